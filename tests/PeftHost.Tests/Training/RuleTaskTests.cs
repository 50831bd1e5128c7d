using PeftHost.Engine.Peft;
using PeftHost.Models;
using PeftHost.Tests.Support;
using PeftHost.Tokenizers;
using PeftHost.Training.Jobs;
using PeftHost.Training.Loop;
using Xunit;
using static TorchSharp.torch;

namespace PeftHost.Tests.Training;

/// <summary>
/// What a falling loss alone cannot show: on the demo's rule task (upper-casing 4-letter words,
/// Host/Cli/Demo), exact match on 100 held-out words rises from near 0 with the random base to at
/// least 90 % with the trained LoRA adapter, reloaded from disk into a fresh model.
/// </summary>
public sealed class RuleTaskTests
{
    [Fact]
    public void Exact_match_on_held_out_words_rises_from_near_zero_to_at_least_90_percent()
    {
        using var dir = new ScratchFolder();
        string modelDir = Path.Combine(dir.Path, "tiny");
        ModelPresets.Write("llama", "tiny", modelDir, seed: 0);
        string demo = Path.Combine(Repo.Root, "Host", "Cli", "Demo");
        string heldOut = Path.Combine(demo, UppercaseTask.HeldOutFile);
        ITextTokenizer tokenizer = TokenizerLoader.FromDirectory(modelDir);
        using var catalog = TrainingCase.Catalog();
        int threads = get_num_threads();
        set_num_threads(1);
        try
        {
            double before;
            using (nn.Module model = ModelFactory.Load(modelDir).Model)
            using (var peft = new PeftModel(model, catalog))
                before = UppercaseTask.Score(peft, tokenizer, heldOut).ExactMatch;
            Assert.True(before <= 0.05, $"the random base already gets {before:P0} right");

            string config = Path.Combine(dir.Path, "lora.json");
            File.WriteAllText(config, UppercaseTask.AdapterConfig().ToJsonString());
            string output = Path.Combine(dir.Path, "out");
            TrainResult result = FineTuningJob.Run(new FineTuningRequest
            {
                ModelFolder = modelDir, DataFile = Path.Combine(demo, UppercaseTask.TrainFile), AdapterConfigFile = config,
                Arguments = UppercaseTask.Settings(output), PluginsFolder = PluginDirs.Installed,
            }, cancel: TestContext.Current.CancellationToken);
            Assert.Equal(250, result.GlobalStep);

            using nn.Module fresh = ModelFactory.Load(modelDir).Model;
            using var trained = PeftModel.FromPretrained(fresh, output, catalog);
            (double after, var answers) = UppercaseTask.Score(trained, tokenizer, heldOut);
            TestContext.Current.TestOutputHelper?.WriteLine($"exact match {before:P0} -> {after:P0}; e.g. {string.Join(", ", answers.Take(5).Select(a => a.Prompt + a.Output))}");
            Assert.True(after >= 0.9, $"exact match after training is {after:P0}: {string.Join(", ", answers.Where(a => !a.Correct).Take(5).Select(a => $"{a.Prompt}{a.Output} (expected {a.Expected})"))}");

            // `pefthost evaluate`'s metrics on the same held-out rows.
            EvaluationJob.Result exact = EvaluationJob.Run(modelDir, output, heldOut, "exact_match", PluginDirs.Installed, maxNewTokens: 8, cancel: TestContext.Current.CancellationToken);
            Assert.Equal(after, exact.Value);
            Assert.Equal(100, exact.Rows);
            // One white-space token per answer: BLEU-4 finds no 2-grams, so it stays low even when every answer is right.
            EvaluationJob.Result loss = EvaluationJob.Run(modelDir, output, heldOut, "loss", PluginDirs.Installed, cancel: TestContext.Current.CancellationToken);
            EvaluationJob.Result baseLoss = EvaluationJob.Run(modelDir, null, heldOut, "loss", PluginDirs.Installed, cancel: TestContext.Current.CancellationToken);
            Assert.True(loss.Value < 0.1 && baseLoss.Value > 3, $"held-out loss {baseLoss.Value} -> {loss.Value}");
            EvaluationJob.Result perplexity = EvaluationJob.Run(modelDir, output, heldOut, "perplexity", PluginDirs.Installed, cancel: TestContext.Current.CancellationToken);
            Assert.Equal(Math.Exp(loss.Value), perplexity.Value, 9);
        }
        finally
        {
            set_num_threads(threads);
        }
    }
}
