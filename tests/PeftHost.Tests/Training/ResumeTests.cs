using System.Text.Json.Nodes;
using PeftHost.Engine.Peft;
using PeftHost.Models;
using PeftHost.Tests.Support;
using PeftHost.Training.Arguments;
using PeftHost.Training.Checkpoints;
using PeftHost.Training.Data;
using PeftHost.Training.Loop;
using Xunit;
using static TorchSharp.torch;

namespace PeftHost.Tests.Training;

/// <summary>
/// A run stopped (cancellation token) and resumed from its checkpoint gives bitwise the losses and
/// the adapter of the uninterrupted run, with dropout on (the random state is restored), padding,
/// shuffling, accumulation, warm-up and clipping; changed settings are refused.
/// </summary>
public sealed class ResumeTests : IDisposable
{
    private readonly ScratchFolder _dir = new();

    public void Dispose() => _dir.Dispose();

    private static TrainingDataset Data()
    {
        var rng = new Random(5);
        var rows = Enumerable.Range(0, 11).Select(i => new DatasetRow("mem.jsonl", i + 1,
            new JsonObject { ["input_ids"] = new JsonArray([.. Enumerable.Range(0, 6 + i % 5).Select(_ => (JsonNode)rng.Next(128))]) })).ToList();
        return TrainingDataset.FromRows("mem.jsonl", rows, new ExampleEncoder(TaskKind.CausalLM, () => throw new InvalidOperationException(), 128, 64, true, false), packing: false);
    }

    private TrainingArguments Args(string output, params (string, JsonNode?)[] extra)
    {
        var o = new JsonObject
        {
            ["output_dir"] = output, ["max_steps"] = 8, ["per_device_train_batch_size"] = 3, ["gradient_accumulation_steps"] = 2,
            ["learning_rate"] = 5e-3, ["lr_scheduler_type"] = "cosine", ["warmup_steps"] = 2, ["max_grad_norm"] = 0.5, ["weight_decay"] = 0.01,
            ["logging_steps"] = 1, ["save_steps"] = 2, ["seed"] = 11,
        };
        foreach ((string k, JsonNode? v) in extra) o[k] = v;
        return TrainingArgumentsReader.Parse(o, "test");
    }

    private static PeftModel Model(PeftHost.Engine.Plugins.PluginCatalog catalog)
    {
        nn.Module model = ModelFactory.Load(TrainingCase.BaseFolder).Model;
        var peft = new PeftModel(model, catalog);
        manual_seed(3);
        peft.AddAdapter("default", new JsonObject
        {
            ["peft_type"] = "LORA", ["r"] = 4, ["lora_alpha"] = 8, ["lora_dropout"] = 0.2, ["init_lora_weights"] = "gaussian",
            ["target_modules"] = new JsonArray("q_proj", "v_proj", "down_proj"),
        });
        return peft;
    }

    private static readonly TrainerOptions Options = new() { WriteCurves = false, RunIdentity = new JsonObject { ["data_sha256"] = "mem" } };

    [Fact]
    public void Stopped_and_resumed_equals_uninterrupted_bitwise()
    {
        using var catalog = TrainingCase.Catalog();
        string straight = Path.Combine(_dir.Path, "straight"), stopped = Path.Combine(_dir.Path, "stopped");
        TrainerState full;
        using (PeftModel peft = Model(catalog))
        {
            var t = new Trainer(peft, Args(straight), Data(), options: Options);
            Assert.Equal(TrainStatus.Completed, t.Train(cancel: TestContext.Current.CancellationToken).Status);
            full = t.State;
        }

        using (PeftModel peft = Model(catalog))
        using (var cts = new CancellationTokenSource())
        {
            var t = new Trainer(peft, Args(stopped), Data(), options: Options);
            t.AddCallback(new CancelAt(3, cts));
            TrainResult r = t.Train(cancel: cts.Token);
            Assert.Equal(TrainStatus.Cancelled, r.Status);
            Assert.Equal(3, r.GlobalStep);
            Assert.Equal(CheckpointFolder.PathOf(stopped, 3), r.LastCheckpoint);
        }
        Assert.Equal(["checkpoint-2", "checkpoint-3"], CheckpointFolder.List(stopped).Select(Path.GetFileName));

        using (PeftModel peft = Model(catalog))
        {
            var t = new Trainer(peft, Args(stopped), Data(), options: Options);
            Assert.Equal(TrainStatus.Completed, t.Train(CheckpointFolder.Latest(stopped), TestContext.Current.CancellationToken).Status);
            var a = full.LogHistory.Where(e => e.ContainsKey("loss")).Select(e => e.ToJsonString()).ToList();
            var b = t.State.LogHistory.Where(e => e.ContainsKey("loss")).Select(e => e.ToJsonString()).ToList();
            Assert.Equal(8, a.Count);
            Assert.Equal(a, b);
        }
        Assert.Equal(File.ReadAllBytes(Path.Combine(straight, "adapter_model.safetensors")), File.ReadAllBytes(Path.Combine(stopped, "adapter_model.safetensors")));
        // train_log.jsonl has each entry once, the summary last.
        var log = File.ReadAllLines(Path.Combine(stopped, Trainer.LogFile)).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
        Assert.Equal(Enumerable.Range(1, 8), log.Where(e => e.ContainsKey("loss")).Select(e => e["step"]!.GetValue<int>()));
        Assert.True(log[^1].ContainsKey("train_loss") && log[^1].ContainsKey("train_runtime"));
    }

    [Fact]
    public void A_changed_setting_is_refused_by_name()
    {
        using var catalog = TrainingCase.Catalog();
        string output = Path.Combine(_dir.Path, "run");
        using (PeftModel peft = Model(catalog))
            new Trainer(peft, Args(output, ("max_steps", 2)), Data(), options: Options).Train(cancel: TestContext.Current.CancellationToken);
        using (PeftModel peft = Model(catalog))
        {
            var t = new Trainer(peft, Args(output, ("max_steps", 2), ("learning_rate", 1e-3)), Data(), options: Options);
            var e = Assert.Throws<InvalidOperationException>(() => t.Train(CheckpointFolder.Latest(output), TestContext.Current.CancellationToken));
            Assert.Contains("setting 'learning_rate' is 0.001 in this run but 0.005 in the checkpoint", e.Message);
        }
        using (PeftModel peft = Model(catalog))
        {
            var t = new Trainer(peft, Args(output, ("max_steps", 2)), Data(), options: Options with { RunIdentity = new JsonObject { ["data_sha256"] = "other" } });
            Assert.Contains("the training data file (its SHA-256) is \"other\" in this run but \"mem\"",
                Assert.Throws<InvalidOperationException>(() => t.Train(CheckpointFolder.Latest(output), TestContext.Current.CancellationToken)).Message);
        }
    }

    [Fact]
    public void Checkpoints_hold_hf_trainer_state_and_rotation_keeps_the_best()
    {
        using var catalog = TrainingCase.Catalog();
        string output = Path.Combine(_dir.Path, "rot");
        using PeftModel peft = Model(catalog);
        var t = new Trainer(peft, Args(output, ("save_total_limit", 1), ("eval_strategy", "steps"), ("eval_steps", 2), ("metric_for_best_model", "loss")),
            Data(), Data(), Options);
        t.Train(cancel: TestContext.Current.CancellationToken);
        var state = (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(output, TrainerState.FileName)))!;
        foreach (string field in new[] { "global_step", "epoch", "log_history", "best_metric", "best_model_checkpoint", "max_steps", "logging_steps", "train_batch_size" })
            Assert.True(state.ContainsKey(field), field);
        Assert.Equal(8, state["global_step"]!.GetValue<int>());
        var evals = ((JsonArray)state["log_history"]!).Where(e => e!.AsObject().ContainsKey("eval_loss")).Select(e => e!["eval_loss"]!.GetValue<double>()).ToList();
        Assert.Equal(4, evals.Count);
        Assert.Equal(evals.Min(), state["best_metric"]!.GetValue<double>());
        string best = state["best_model_checkpoint"]!.GetValue<string>();
        var kept = CheckpointFolder.List(output).Select(Path.GetFullPath).ToList();
        Assert.Contains(Path.GetFullPath(best), kept);
        Assert.Contains(Path.GetFullPath(CheckpointFolder.PathOf(output, 8)), kept);
        Assert.True(kept.Count <= 2);
        // Saved adapters record the base and carry a model card.
        Assert.Equal("library_name: peft", File.ReadAllLines(Path.Combine(output, "README.md"))[1..3].First(l => l.StartsWith("library_name", StringComparison.Ordinal)));
    }

    [Fact]
    public void Early_stopping_ends_the_run_and_load_best_model_at_end_keeps_the_best_adapter()
    {
        using var catalog = TrainingCase.Catalog();
        string output = Path.Combine(_dir.Path, "early");
        using PeftModel peft = Model(catalog);
        // Only an improvement by more than 100 counts: after the first evaluation none does, so two more end the run.
        var t = new Trainer(peft, Args(output, ("max_steps", 20), ("eval_strategy", "steps"), ("eval_steps", 1), ("save_steps", 1),
            ("early_stopping_patience", 2), ("early_stopping_threshold", 100.0), ("load_best_model_at_end", true)), Data(), Data(), Options);
        TrainResult r = t.Train(cancel: TestContext.Current.CancellationToken);
        Assert.Equal(3, r.GlobalStep);
        Assert.Equal(3, t.State.LogHistory.Count(e => e.ContainsKey("eval_loss")));
        double first = t.State.LogHistory.First(e => e.ContainsKey("eval_loss"))["eval_loss"]!.GetValue<double>();
        Assert.Equal(t.State.LogHistory.Where(e => e.ContainsKey("eval_loss")).Min(e => e["eval_loss"]!.GetValue<double>()), t.State.BestMetric);
        string best = t.State.BestModelCheckpoint!;
        Assert.True(t.State.BestMetric <= first);
        // The final adapter is the best checkpoint's.
        Assert.Equal(File.ReadAllBytes(Path.Combine(best, "adapter_model.safetensors")), File.ReadAllBytes(Path.Combine(output, "adapter_model.safetensors")));
    }

    private sealed class CancelAt(int step, CancellationTokenSource cts) : TrainerCallback
    {
        public override void OnStepEnd(TrainingArguments args, TrainerState state, TrainerControl control)
        {
            if (state.GlobalStep == step) cts.Cancel();
        }
    }
}
