using System.Text.Json.Nodes;
using PeftHost.Engine.Peft;
using PeftHost.Tokenizers;
using PeftHost.Training.Data;
using PeftHost.Training.Evaluation;
using static TorchSharp.torch;

namespace PeftHost.Training.Jobs;

/// <summary>
/// The demo's rule task (tools/demo-task/make_uppercase_task.py writes its files): upper-case a word of
/// 4 random lower-case letters ("qkvo=" → "QKVO"), 2500 training words and 100 held-out ones. A
/// random-init tiny Llama cannot do it; a LoRA adapter (r 16 on every projection and the output head,
/// so the random head can learn the capital letters) learns the rule in 250 steps and applies it to
/// words it never saw. The adapter and settings live here so that the demo and its test train the same way.
/// </summary>
public static class UppercaseTask
{
    /// <summary>The training rows' file name.</summary>
    public const string TrainFile = "uppercase.train.jsonl";

    /// <summary>The held-out rows' file name.</summary>
    public const string HeldOutFile = "uppercase.heldout.jsonl";

    /// <summary>LoRA r 16, alpha 32 on q, k, v, o, gate, up, down and lm_head.</summary>
    public static JsonObject AdapterConfig() => new()
    {
        ["peft_type"] = "LORA", ["task_type"] = "CAUSAL_LM", ["r"] = 16, ["lora_alpha"] = 32, ["lora_dropout"] = 0.0,
        ["target_modules"] = new JsonArray("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "lm_head"),
    };

    /// <summary>250 steps of 32 rows, lr 5e-3 with 10 warm-up steps then linear decay; a log line every 25 steps.</summary>
    public static JsonObject Settings(string outputDir) => new()
    {
        ["output_dir"] = outputDir, ["max_steps"] = 250, ["per_device_train_batch_size"] = 32, ["learning_rate"] = 5e-3,
        ["warmup_steps"] = 10, ["lr_scheduler_type"] = "linear", ["logging_steps"] = 25, ["save_strategy"] = "no", ["seed"] = 42,
    };

    /// <summary>One held-out answer.</summary>
    /// <param name="Prompt">The prompt ("qkvo=").</param>
    /// <param name="Expected">The right answer ("QKVO").</param>
    /// <param name="Output">The model's greedy answer.</param>
    public sealed record Answer(string Prompt, string Expected, string Output)
    {
        /// <summary>Whether it is exactly right.</summary>
        public bool Correct => Output.Trim() == Expected;
    }

    /// <summary>The model's answers to the held-out prompts (greedy, up to 8 tokens, ending at eos) and the exact-match rate.</summary>
    public static (double ExactMatch, IReadOnlyList<Answer> Answers) Score(PeftModel model, ITextTokenizer tokenizer, string heldOutFile, Device? device = null)
    {
        var answers = new List<Answer>();
        foreach (DatasetRow row in DatasetFile.Read(heldOutFile))
        {
            string prompt = row.Fields["prompt"]!.GetValue<string>(), expected = row.Fields["completion"]!.GetValue<string>();
            IReadOnlyList<int> ids = GreedyDecoder.Continue(model, [.. tokenizer.Encode(prompt)], 8, [.. tokenizer.EosTokenIds], device ?? CPU);
            answers.Add(new Answer(prompt, expected, tokenizer.Decode(ids, skipSpecialTokens: true)));
        }
        return (answers.Count(a => a.Correct) / (double)answers.Count, answers);
    }
}
