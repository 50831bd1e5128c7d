using PeftHost.Engine.Peft;
using PeftHost.Formats.BitsAndBytes;
using PeftHost.Engine.Plugins;
using PeftHost.Models;
using PeftHost.Models.Config;
using PeftHost.Tokenizers;
using PeftHost.Training.Arguments;
using PeftHost.Training.Data;
using PeftHost.Training.Evaluation;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Training.Jobs;

/// <summary>
/// `pefthost evaluate`: one metric of a model (with an adapter) on a dataset. loss, perplexity and
/// accuracy come from the forward pass (accuracy: the label for classifiers, the next token over
/// counted tokens for causal LMs); exact_match and bleu greedily complete each prompt + completion
/// row's prompt and compare the text with its completion (exact_match after trimming white space;
/// BLEU: corpus BLEU-4 on white-space tokens, as sacreBLEU with tokenize="none").
/// </summary>
public static class EvaluationJob
{
    /// <summary>The metrics served.</summary>
    public static IReadOnlyList<string> Metrics { get; } = ["loss", "perplexity", "accuracy", "exact_match", "bleu"];

    /// <summary>The result: the value, the rows evaluated, and for generation metrics each row's output.</summary>
    /// <param name="Metric">The metric.</param>
    /// <param name="Value">Its value (exact_match a fraction in [0, 1], bleu 0..100).</param>
    /// <param name="Rows">Rows evaluated.</param>
    /// <param name="Outputs">Generation metrics: (prompt row, generated text, reference).</param>
    public sealed record Result(string Metric, double Value, int Rows, IReadOnlyList<(string Source, string Output, string Reference)> Outputs);

    /// <summary>Evaluates; with <paramref name="quantization"/> the base's linear layers are quantized as they load (a QLoRA adapter's base).</summary>
    public static Result Run(string modelFolder, string? adapterFolder, string dataFile, string metric, string pluginsFolder, Device? device = null,
        int maxLength = 1024, int batchSize = 8, int maxNewTokens = 64, CancellationToken cancel = default, BitsAndBytesConfig? quantization = null)
    {
        if (!Metrics.Contains(metric)) throw new ArgumentException($"--metric {metric}: use one of {string.Join("|", Metrics)}.");
        device ??= CPU;
        using var catalog = new PluginCatalog(new PluginCatalogOptions { PluginsDirectory = pluginsFolder, HotReload = false });
        catalog.Scan();
        (ModelConfig config, nn.Module model) = ModelFactory.Load(modelFolder, ScalarType.Float32, device, quantization);
        using (model)
        using (var peft = adapterFolder is null ? new PeftModel(model, catalog) : PeftModel.FromPretrained(model, adapterFolder, catalog))
        {
            TaskKind task = model is ISequenceClassifier ? TaskKind.SequenceClassification : TaskKind.CausalLM;
            ITextTokenizer? tokenizer = null;
            ITextTokenizer Tokenizer() => tokenizer ??= TokenizerLoader.FromDirectory(modelFolder);
            var args = new TrainingArguments { MaxLength = maxLength, CompletionOnlyLoss = true };
            TrainingDataset data = TrainingDataset.Load(dataFile, FineTuningJob.Encoder(config, task, Tokenizer, args), packing: false);
            if (metric is "loss" or "perplexity" or "accuracy")
            {
                Dictionary<string, double> m = Evaluator.Evaluate(peft, data, task, batchSize, FineTuningJob.PadId(config, task == TaskKind.CausalLM ? Tokenizer : null), device, cancel);
                if (!m.TryGetValue("eval_" + metric, out double value))
                    throw new NotSupportedException($"--metric {metric} does not apply to this model and data (available: {string.Join(", ", m.Keys.Select(k => k["eval_".Length..]))}).");
                return new Result(metric, value, data.Examples.Count, []);
            }
            if (task != TaskKind.CausalLM) throw new NotSupportedException($"--metric {metric} needs a causal language model.");
            var outputs = new List<(string, string, string)>();
            foreach (TrainingExample e in data.Examples)
            {
                cancel.ThrowIfCancellationRequested();
                if (e.PromptLength is not int promptLength || e.Reference is null)
                    throw new InvalidDataException($"{e.Source}: --metric {metric} needs prompt + completion rows (the completion is the reference).");
                IReadOnlyList<int> generated = GreedyDecoder.Continue(peft, e.InputIds[..promptLength], maxNewTokens, [.. Tokenizer().EosTokenIds], device);
                outputs.Add((e.Source, Tokenizer().Decode(generated, skipSpecialTokens: true), e.Reference));
            }
            double score = metric == "exact_match"
                ? outputs.Count(o => o.Item2.Trim() == o.Item3.Trim()) / (double)outputs.Count
                : Bleu.Corpus([.. outputs.Select(o => o.Item2)], [.. outputs.Select(o => o.Item3)]);
            return new Result(metric, score, outputs.Count, outputs);
        }
    }
}
