using System.Text.Json.Nodes;
using PeftHost.Tests.Support;
using PeftHost.Training.Loop;
using Xunit;

namespace PeftHost.Tests.Training;

/// <summary>
/// Training against the real PEFT, torch's AdamW and transformers' Trainer: per-step losses, learning
/// rates and gradient norms (before clipping), and the final adapter, to 1e-4.
/// </summary>
public sealed class TrainingReferenceTests
{
    [Theory]
    [InlineData("lora")]
    [InlineData("dora")]
    [InlineData("rslora_mlp")]
    [InlineData("ia3")]
    [InlineData("prompt_tuning")]
    [InlineData("trainer")]
    public void Losses_rates_grad_norms_and_the_final_adapter_match_transformers_Trainer(string name)
    {
        var c = new TrainingCase(name);
        using var scratch = new ScratchFolder();
        using var catalog = TrainingCase.Catalog();
        using var peft = c.Model(catalog);
        var trainer = new Trainer(peft, c.Arguments(scratch.Path), TrainingCase.Data(), options: new TrainerOptions { WriteCurves = false });
        TrainResult result = trainer.Train(cancel: TestContext.Current.CancellationToken);

        Assert.Equal(TrainStatus.Completed, result.Status);
        var logged = trainer.State.LogHistory.Where(e => e.ContainsKey("loss")).ToList();
        Assert.Equal(c.Steps.Count, logged.Count);
        for (int i = 0; i < logged.Count; i++)
        {
            JsonObject expected = c.Steps[i], actual = logged[i];
            Assert.Equal(expected["step"]!.GetValue<int>(), actual["step"]!.GetValue<int>());
            AssertClose(expected["loss"]!.GetValue<double>(), actual["loss"]!.GetValue<double>(), $"{name} step {i + 1} loss");
            AssertClose(expected["learning_rate"]!.GetValue<double>(), actual["learning_rate"]!.GetValue<double>(), $"{name} step {i + 1} learning_rate", 1e-9);
            AssertClose(expected["grad_norm"]!.GetValue<double>(), actual["grad_norm"]!.GetValue<double>(), $"{name} step {i + 1} grad_norm");
        }
        c.AssertFinalAdapter(scratch.Path);
    }

    private static void AssertClose(double expected, double actual, string what, double tolerance = TrainingCase.Tolerance) =>
        Assert.True(Math.Abs(expected - actual) <= tolerance * Math.Max(1, Math.Abs(expected)), $"{what}: expected {expected}, got {actual}");
}
