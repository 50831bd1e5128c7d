using System.Text.Json.Nodes;
using PeftHost.Engine.Peft;
using PeftHost.Engine.Plugins;
using PeftHost.Formats.Safetensors;
using PeftHost.Models;
using PeftHost.Models.Checkpoint;
using PeftHost.Tests.PeftReference;
using PeftHost.Tests.Support;
using PeftHost.Training.Arguments;
using PeftHost.Training.Data;
using PeftHost.Training.Loop;
using Xunit;
using static TorchSharp.torch;

namespace PeftHost.Tests.Training;

/// <summary>
/// A case of tests/fixtures/training (tools/training-reference/make_training_cases.py, the real PEFT,
/// torch's AdamW and transformers' Trainer): base model, pre-tokenised rows, the initial adapter, the
/// Trainer's settings, its per-step losses / rates / grad norms and its final adapter.
/// </summary>
internal sealed class TrainingCase
{
    public const double Tolerance = 1e-4;

    public TrainingCase(string name)
    {
        Name = name;
        Folder = Path.Combine(Root, name);
        Steps = [.. ((JsonArray)JsonNode.Parse(File.ReadAllText(Path.Combine(Folder, "steps.json")))!["steps"]!).Select(s => (JsonObject)s!)];
        Settings = (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(Folder, "training.json")))!;
    }

    public static string Root => Path.Combine(Repo.Root, "tests", "fixtures", "training");

    public static string DataFile => Path.Combine(Root, "data.jsonl");

    public static string BaseFolder => Path.Combine(Root, "base");

    public string Name { get; }

    public string Folder { get; }

    public IReadOnlyList<JsonObject> Steps { get; }

    public JsonObject Settings { get; }

    /// <summary>The case's settings with an output folder (and any overrides).</summary>
    public TrainingArguments Arguments(string outputDir, params (string Key, JsonNode? Value)[] overrides)
    {
        var json = (JsonObject)Settings.DeepClone();
        json["output_dir"] = outputDir;
        foreach ((string k, JsonNode? v) in overrides) json[k] = v;
        return TrainingArgumentsReader.Parse(json, Name + "/training.json");
    }

    /// <summary>The base model with the case's initial adapter, trainable.</summary>
    public PeftModel Model(PluginCatalog catalog)
    {
        nn.Module model = ModelFactory.Load(BaseFolder).Model;
        var peft = new PeftModel(model, catalog);
        peft.LoadAdapter(Path.Combine(Folder, "initial_adapter"), "default", isTrainable: true);
        return peft;
    }

    public static TrainingDataset Data() =>
        TrainingDataset.Load(DataFile, new ExampleEncoder(TaskKind.CausalLM, () => throw new InvalidOperationException("pre-tokenised rows need no tokenizer"), 128, 1024, true, false), packing: false);

    /// <summary>Asserts the saved adapter's tensors match the reference's final adapter to the tolerance.</summary>
    public void AssertFinalAdapter(string adapterFolder)
    {
        using var expected = SafetensorsFile.Open(Path.Combine(Folder, "final_adapter", "adapter_model.safetensors"));
        using var actual = SafetensorsFile.Open(Path.Combine(adapterFolder, "adapter_model.safetensors"));
        Assert.Equal(expected.Tensors.Select(t => t.Name).Order(), actual.Tensors.Select(t => t.Name).Order());
        double worst = 0;
        foreach (SafetensorsTensorInfo info in expected.Tensors)
        {
            using Tensor e = TensorBridge.Read(expected, info.Name);
            using Tensor a = TensorBridge.Read(actual, info.Name);
            Assert.Equal(e.shape, a.shape);
            if (e.numel() == 0) continue; // a module AdaLoRA pruned to rank 0: its shape is all there is
            double diff = (e - a).abs().max().item<float>();
            worst = Math.Max(worst, diff);
            Assert.True(diff < Tolerance, $"{Name}: {info.Name} differs by {diff} (bound {Tolerance})");
        }
        TestContext.Current.TestOutputHelper?.WriteLine($"{Name}: final adapter max |diff| = {worst:E2}");
    }

    public static PluginCatalog Catalog() => PeftCase.Catalog();
}
