using System.Text.Json.Nodes;
using PeftHost.Engine.Peft;
using PeftHost.Models;
using PeftHost.Tests.Support;
using PeftHost.Training.Arguments;
using PeftHost.Training.Loop;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace PeftHost.Tests.Training;

/// <summary>A long run holds no more TorchSharp tensors at its end than after its first steps (no per-step leak).</summary>
public sealed class LeakTests
{
    [Fact]
    public void Live_tensors_do_not_grow_over_a_run()
    {
        using var dir = new ScratchFolder();
        using var catalog = TrainingCase.Catalog();
        using nn.Module model = ModelFactory.Load(TrainingCase.BaseFolder).Model;
        using var peft = new PeftModel(model, catalog);
        peft.AddAdapter("default", new JsonObject { ["peft_type"] = "LORA", ["r"] = 4, ["lora_alpha"] = 8, ["lora_dropout"] = 0.1, ["target_modules"] = new JsonArray("q_proj", "v_proj", "o_proj") });
        TrainingArguments args = TrainingArgumentsReader.Parse(new JsonObject
        {
            ["output_dir"] = dir.Path, ["max_steps"] = 60, ["per_device_train_batch_size"] = 2, ["gradient_accumulation_steps"] = 2,
            ["logging_steps"] = 5, ["save_strategy"] = "no", ["gradient_checkpointing"] = true,
        }, "test");
        var counts = new Counter();
        var trainer = new Trainer(peft, args, TrainingCase.Data(), options: new TrainerOptions { WriteCurves = false });
        trainer.AddCallback(counts);
        trainer.Train(cancel: TestContext.Current.CancellationToken);
        Assert.Equal(60, counts.Counts.Count);
        Assert.True(counts.Counts[^1] <= counts.Counts[4], $"live tensors at step 5: {counts.Counts[4]}, at step 60: {counts.Counts[^1]}");
    }

    private sealed class Counter : TrainerCallback
    {
        public List<long> Counts { get; } = [];

        public override void OnStepEnd(TrainingArguments args, TrainerState state, TrainerControl control) =>
            Counts.Add(DisposeScopeManager.Statistics.ThreadTotalLiveCount);
    }
}
