using System.Text.Json.Nodes;
using PeftHost.Engine.Peft;
using PeftHost.Engine.Plugins;
using PeftHost.Models;
using PeftHost.Tests.Support;
using PeftHost.Training.Arguments;
using PeftHost.Training.Loop;
using Xunit;
using static TorchSharp.torch;

namespace PeftHost.Tests.Training;

/// <summary>
/// A PiSSA adapter (its initialisation replaces the base weights by their residual) trained by the Trainer:
/// every save is converted to a plain LoRA adapter of the untouched base (PEFT's
/// path_initial_model_for_weight_conversion), so the saved adapter on the original model gives the trained
/// model's logits; the initial adapter is kept in output_dir, a checkpoint also keeps the adapter as trained,
/// and a resume (the residual base rebuilt by the same setup) ends bitwise as the uninterrupted run.
/// </summary>
public sealed class PissaTrainingTests : IDisposable
{
    private readonly ScratchFolder _dir = new();

    public void Dispose() => _dir.Dispose();

    private static readonly TrainerOptions Options = new() { WriteCurves = false };

    private static TrainingArguments Args(string output) => TrainingArgumentsReader.Parse(new JsonObject
    {
        ["output_dir"] = output, ["max_steps"] = 6, ["per_device_train_batch_size"] = 4, ["learning_rate"] = 1e-2,
        ["lr_scheduler_type"] = "linear", ["logging_steps"] = 1, ["save_steps"] = 3, ["seed"] = 7,
    }, "test");

    // The setup a run and its resume share: the base, then a fresh PiSSA adapter (deterministic: an SVD of the base).
    private static (nn.Module Model, PeftModel Peft) Setup(PluginCatalog catalog)
    {
        nn.Module model = ModelFactory.Load(TrainingCase.BaseFolder).Model;
        var peft = new PeftModel(model, catalog);
        peft.AddAdapter("default", new JsonObject
        {
            ["peft_type"] = "LORA", ["r"] = 4, ["lora_alpha"] = 8, ["lora_dropout"] = 0.0, ["init_lora_weights"] = "pissa",
            ["target_modules"] = new JsonArray("q_proj", "v_proj"),
        });
        return (model, peft);
    }

    private static Tensor Ids() => tensor(File.ReadLines(TrainingCase.DataFile)
        .SelectMany(l => ((JsonArray)JsonNode.Parse(l)!["input_ids"]!).Select(v => v!.GetValue<long>())).ToArray()).view(4, -1);

    [Fact]
    public void Every_save_is_converted_for_the_untouched_base_and_a_resume_is_bitwise()
    {
        using var catalog = TrainingCase.Catalog();
        using Tensor ids = Ids();
        string output = Path.Combine(_dir.Path, "run");
        Tensor trainedLogits;
        List<double> losses;
        (nn.Module residual, PeftModel peft) = Setup(catalog);
        using (peft)
        {
            var trainer = new Trainer(peft, Args(output), TrainingCase.Data(), options: Options);
            Assert.Equal(TrainStatus.Completed, trainer.Train(cancel: TestContext.Current.CancellationToken).Status);
            losses = Losses(trainer.State);
            using (no_grad()) trainedLogits = peft.Run(() => ((ICausalLM)residual).Forward(ids));
        }
        residual.Dispose();

        // PEFT's conversion: rank 2r, init_lora_weights true, for the original base.
        JsonObject config = Config(output);
        Assert.Equal(8, config["r"]!.GetValue<int>());
        Assert.True(config["init_lora_weights"]!.GetValue<bool>());
        Assert.Equal("pissa", Config(Path.Combine(output, Trainer.InitialAdapterFolder))["init_lora_weights"]!.GetValue<string>());
        string checkpoint = Path.Combine(output, "checkpoint-3");
        Assert.Equal(8, Config(checkpoint)["r"]!.GetValue<int>());
        Assert.Equal(4, Config(Path.Combine(checkpoint, Trainer.UnconvertedAdapterFolder))["r"]!.GetValue<int>());

        nn.Module original = ModelFactory.Load(TrainingCase.BaseFolder).Model;
        using (PeftModel loaded = PeftModel.FromPretrained(original, output, catalog))
        using (no_grad())
        using (Tensor logits = loaded.Run(() => ((ICausalLM)original).Forward(ids)))
        {
            double diff = Tensors.MaxAbsDiff(logits, trainedLogits);
            Assert.True(diff < 1e-4, $"untouched base + converted adapter vs residual base + trained adapter: logits differ by {diff}");
        }
        original.Dispose();
        trainedLogits.Dispose();

        // The resume: the same setup rebuilds the residual base; the checkpoint's unconverted adapter continues.
        string resumed = Path.Combine(_dir.Path, "resumed");
        ScratchFolder.CopyTree(checkpoint, Path.Combine(resumed, "checkpoint-3"));
        ScratchFolder.CopyTree(Path.Combine(output, Trainer.InitialAdapterFolder), Path.Combine(resumed, Trainer.InitialAdapterFolder));
        (residual, peft) = Setup(catalog);
        using (peft)
        {
            var trainer = new Trainer(peft, Args(resumed), TrainingCase.Data(), options: Options);
            Assert.Equal(TrainStatus.Completed, trainer.Train(Path.Combine(resumed, "checkpoint-3"), TestContext.Current.CancellationToken).Status);
            Assert.Equal(losses.Skip(3), Losses(trainer.State).Skip(3));
        }
        residual.Dispose();
        Assert.Equal(File.ReadAllBytes(Path.Combine(output, "adapter_model.safetensors")), File.ReadAllBytes(Path.Combine(resumed, "adapter_model.safetensors")));
    }

    private static List<double> Losses(TrainerState state) =>
        [.. state.LogHistory.Where(e => e.ContainsKey("loss")).Select(e => e["loss"]!.GetValue<double>())];

    private static JsonObject Config(string folder) => (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "adapter_config.json")))!;
}
