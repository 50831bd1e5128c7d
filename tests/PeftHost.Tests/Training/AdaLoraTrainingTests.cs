using System.Text.Json.Nodes;
using PeftHost.Engine.Peft;
using PeftHost.Tests.Support;
using PeftHost.Training.Checkpoints;
using PeftHost.Training.Loop;
using Xunit;

namespace PeftHost.Tests.Training;

/// <summary>
/// AdaLoRA's whole schedule in training, against the real PEFT run by transformers' Trainer
/// (tools/training-reference/make_adalora_case.py): the orthogonal regularisation in every step's loss,
/// update_and_allocate after each optimiser step (tinit 2, tfinal 2, deltaT 2 over 8 steps, init_r 4 to
/// target_r 2), the rank pattern of each allocation, and the final adapter cut to PEFT's rank_pattern.
/// A run resumed from a checkpoint taken after an allocation ends bitwise as the uninterrupted one.
/// </summary>
public sealed class AdaLoraTrainingTests : IDisposable
{
    private readonly ScratchFolder _dir = new();

    public void Dispose() => _dir.Dispose();

    private static readonly TrainerOptions Options = new() { WriteCurves = false };

    [Fact]
    public void Losses_rank_patterns_and_the_pruned_adapter_match_PEFT()
    {
        var c = new TrainingCase("adalora");
        string output = Path.Combine(_dir.Path, "run");
        using var catalog = TrainingCase.Catalog();
        using PeftModel peft = c.Model(catalog);
        // A checkpoint right after the first budget cut (step 5), whose adapter is cut to that step's pattern.
        var trainer = new Trainer(peft, c.Arguments(output, ("save_strategy", "steps"), ("save_steps", 5)), TrainingCase.Data(), options: Options);
        Assert.Equal(TrainStatus.Completed, trainer.Train(cancel: TestContext.Current.CancellationToken).Status);

        var logged = trainer.State.LogHistory.Where(e => e.ContainsKey("loss")).ToList();
        Assert.Equal(c.Steps.Count, logged.Count);
        for (int i = 0; i < logged.Count; i++)
        {
            AssertClose(c.Steps[i]["loss"]!.GetValue<double>(), logged[i]["loss"]!.GetValue<double>(), $"step {i + 1} loss (orthogonal regularisation included)");
            AssertClose(c.Steps[i]["grad_norm"]!.GetValue<double>(), logged[i]["grad_norm"]!.GetValue<double>(), $"step {i + 1} grad_norm");
        }

        var patterns = ((JsonArray)JsonNode.Parse(File.ReadAllText(Path.Combine(c.Folder, "rank_patterns.json")))!["rank_patterns"]!).Select(p => (JsonObject)p!).ToList();
        JsonObject atFive = patterns.Single(p => p["after_step"]!.GetValue<int>() == 5);
        JsonObject checkpoint = Config(Path.Combine(output, "checkpoint-5"));
        Assert.True(JsonNode.DeepEquals(atFive["rank_pattern"], checkpoint["rank_pattern"]), $"rank_pattern after step 5: expected {atFive["rank_pattern"]!.ToJsonString()}, got {checkpoint["rank_pattern"]?.ToJsonString()}");

        JsonObject expected = Config(Path.Combine(c.Folder, "final_adapter")), actual = Config(output);
        Assert.True(JsonNode.DeepEquals(expected["rank_pattern"], actual["rank_pattern"]), $"final rank_pattern: expected {expected["rank_pattern"]!.ToJsonString()}, got {actual["rank_pattern"]?.ToJsonString()}");
        Assert.Equal(8, actual["total_step"]!.GetValue<int>()); // taken from max_steps (the initial config has none)
        // The saved triplets are cut to the pattern (a module whose every triplet was pruned keeps rank 0), to 1e-4.
        c.AssertFinalAdapter(output);
    }

    [Fact]
    public void Resumed_after_an_allocation_equals_the_uninterrupted_run_bitwise()
    {
        var c = new TrainingCase("adalora");
        string straight = Path.Combine(_dir.Path, "straight"), resumed = Path.Combine(_dir.Path, "resumed");
        using var catalog = TrainingCase.Catalog();
        TrainerState full;
        using (PeftModel peft = c.Model(catalog))
        {
            var t = new Trainer(peft, c.Arguments(straight, Saving()), TrainingCase.Data(), options: Options);
            Assert.Equal(TrainStatus.Completed, t.Train(cancel: TestContext.Current.CancellationToken).Status);
            full = t.State;
        }
        // The checkpoint holds the rank allocator's scores and the untruncated triplets beside the cut adapter.
        string checkpoint = Path.Combine(straight, "checkpoint-5");
        Assert.True(File.Exists(Path.Combine(checkpoint, TunerTrainingState.TensorsFile)));
        ScratchFolder.CopyTree(checkpoint, Path.Combine(resumed, "checkpoint-5"));
        using (PeftModel peft = c.Model(catalog))
        {
            var t = new Trainer(peft, c.Arguments(resumed, Saving()), TrainingCase.Data(), options: Options);
            Assert.Equal(TrainStatus.Completed, t.Train(Path.Combine(resumed, "checkpoint-5"), TestContext.Current.CancellationToken).Status);
            Assert.Equal(Losses(full).Skip(5), Losses(t.State).Skip(5));
        }
        Assert.Equal(File.ReadAllBytes(Path.Combine(straight, "adapter_model.safetensors")), File.ReadAllBytes(Path.Combine(resumed, "adapter_model.safetensors")));
        Assert.True(JsonNode.DeepEquals(Config(straight)["rank_pattern"], Config(resumed)["rank_pattern"]));
    }

    [Fact]
    public void A_schedule_with_no_step_to_shrink_the_budget_in_is_refused_naming_its_fields()
    {
        var c = new TrainingCase("adalora");
        using var catalog = TrainingCase.Catalog();
        using PeftModel peft = c.Model(catalog);
        var trainer = new Trainer(peft, c.Arguments(Path.Combine(_dir.Path, "short"), ("max_steps", 4)), TrainingCase.Data(), options: Options);
        Exception e = Assert.ThrowsAny<Exception>(() => trainer.Train(cancel: TestContext.Current.CancellationToken));
        Assert.Contains("tinit (2) + tfinal (2) must be less than total_step (4, the run's max_steps)", e.Message);
    }

    private static (string, JsonNode?)[] Saving() => [("save_strategy", "steps"), ("save_steps", 5)];

    private static List<double> Losses(TrainerState state) =>
        [.. state.LogHistory.Where(e => e.ContainsKey("loss")).Select(e => e["loss"]!.GetValue<double>())];

    private static JsonObject Config(string folder) => (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "adapter_config.json")))!;


    private static void AssertClose(double expected, double actual, string what) =>
        Assert.True(Math.Abs(expected - actual) <= TrainingCase.Tolerance * Math.Max(1, Math.Abs(expected)), $"adalora {what}: expected {expected}, got {actual}");
}
