using System.Text.Json.Nodes;
using PeftHost.Engine.Peft;
using PeftHost.Models;
using PeftHost.Tests.Support;
using PeftHost.Tokenizers;
using PeftHost.Training.Arguments;
using PeftHost.Training.Data;
using PeftHost.Training.Jobs;
using PeftHost.Training.Loop;
using Xunit;
using static TorchSharp.torch;

namespace PeftHost.Tests.Training;

/// <summary>Sequence classification trains through the same loop: label names from label2id, cross-entropy, eval_accuracy.</summary>
public sealed class ClassificationTrainingTests
{
    [Fact]
    public void A_bert_classifier_learns_a_rule_and_reports_eval_accuracy()
    {
        using var dir = new ScratchFolder();
        string modelDir = Path.Combine(dir.Path, "bert");
        ModelPresets.Write("bert", "tiny", modelDir, seed: 0);
        var config = (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(modelDir, "config.json")))!;
        config["label2id"] = new JsonObject { ["short"] = 0, ["long"] = 1 };
        config["id2label"] = new JsonObject { ["0"] = "short", ["1"] = "long" };
        File.WriteAllText(Path.Combine(modelDir, "config.json"), config.ToJsonString());
        // The rule: a row of 3 words is "short", of 9 words "long".
        string data = Path.Combine(dir.Path, "rows.jsonl");
        var rng = new Random(3);
        string[] words = ["the", "a", "of", "and", "to", "in", "is", "it"];
        File.WriteAllLines(data, Enumerable.Range(0, 64).Select(i =>
        {
            bool isLong = i % 2 == 0;
            string text = string.Join(' ', Enumerable.Range(0, isLong ? 9 : 3).Select(_ => words[rng.Next(words.Length)]));
            return new JsonObject { ["text"] = text, ["label"] = isLong ? "long" : "short" }.ToJsonString();
        }));
        string adapter = Path.Combine(dir.Path, "lora.json");
        File.WriteAllText(adapter, new JsonObject
        {
            ["peft_type"] = "LORA", ["task_type"] = "SEQ_CLS", ["r"] = 8, ["lora_alpha"] = 16, ["target_modules"] = new JsonArray("query", "value"),
        }.ToJsonString());
        string output = Path.Combine(dir.Path, "out");
        TrainResult result = FineTuningJob.Run(new FineTuningRequest
        {
            ModelFolder = modelDir, DataFile = data, AdapterConfigFile = adapter, PluginsFolder = PluginDirs.Installed,
            Arguments = new JsonObject
            {
                ["output_dir"] = output, ["num_train_epochs"] = 6, ["per_device_train_batch_size"] = 16, ["learning_rate"] = 3e-3,
                ["logging_steps"] = 4, ["eval_strategy"] = "epoch", ["save_strategy"] = "no", ["eval_split"] = 0.25,
            },
        }, cancel: TestContext.Current.CancellationToken);
        Assert.Equal(18, result.GlobalStep); // 48 training rows / 16 = 3 steps per epoch, 6 epochs
        var state = (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(output, "trainer_state.json")))!;
        var evals = ((JsonArray)state["log_history"]!).Select(e => e!.AsObject()).Where(e => e.ContainsKey("eval_accuracy")).ToList();
        Assert.Equal(6, evals.Count);
        Assert.True(evals[^1]["eval_accuracy"]!.GetValue<double>() >= 0.75, $"eval_accuracy {evals[^1]["eval_accuracy"]}");
        Assert.True(evals[^1]["eval_loss"]!.GetValue<double>() < evals[0]["eval_loss"]!.GetValue<double>());
        // The classifier head was saved with the adapter (modules_to_save from task_type SEQ_CLS).
        using var file = PeftHost.Formats.Safetensors.SafetensorsFile.Open(Path.Combine(output, "adapter_model.safetensors"));
        Assert.Contains(file.Tensors, t => t.Name.Contains("classifier", StringComparison.Ordinal));
    }
}
