using System.Text.Json.Nodes;
using PeftHost.Engine.Peft;
using PeftHost.Engine.Plugins;
using PeftHost.Formats.Safetensors;
using PeftHost.Models;
using PeftHost.Models.Checkpoint;
using PeftHost.Tests.Support;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace PeftHost.Tests.PeftReference;

/// <summary>
/// One case of tests/fixtures/peft (written by the real PEFT 0.13.2): its base model, adapter
/// folder, inputs, reference logits and meta.json, found by walking up from the test binary to the
/// repository root (the folder holding Host.sln).
/// </summary>
internal sealed class PeftCase
{
    /// <summary>The bound the fixtures' README suggests.</summary>
    public const double Tolerance = 1e-4;

    public PeftCase(string name)
    {
        Name = name;
        Folder = Path.Combine(Root, name);
        if (!Directory.Exists(Folder)) throw new DirectoryNotFoundException($"No PEFT reference case '{name}' in {Root}.");
        Meta = (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(Folder, "meta.json")))!;
    }

    public static string Root => Path.Combine(Repo.Root, "tests", "fixtures", "peft");

    public string Name { get; }

    public string Folder { get; }

    public JsonObject Meta { get; }

    /// <summary>The adapter folder, or its sub-folder for a named adapter saved beside "default".</summary>
    public string AdapterDir(string? sub = null) => sub is null ? Path.Combine(Folder, "adapter") : Path.Combine(Folder, "adapter", sub);

    /// <summary>The base model folder: the case's own <c>base/</c>, or the shared one meta.json's <c>base.folder</c> names (relative to the case, e.g. <c>../bases/llama</c>).</summary>
    public string BaseDir => Meta["base"] is JsonObject b && b["folder"] is JsonValue shared
        ? Path.GetFullPath(Path.Combine(Folder, shared.GetValue<string>()))
        : Path.Combine(Folder, "base");

    /// <summary>The base model, loaded with our loader (eval, float32, CPU).</summary>
    public nn.Module LoadBase() => ModelFactory.Load(BaseDir).Model;

    /// <summary>A catalog over the installed plugins folder, as a user's host has.</summary>
    public static PluginCatalog Catalog()
    {
        var catalog = new PluginCatalog(new PluginCatalogOptions { PluginsDirectory = PluginDirs.Installed, HotReload = false });
        catalog.Scan();
        return catalog;
    }

    /// <summary>The case's inputs.json.</summary>
    public ModelInputs Inputs() => ModelInputs.Read(Path.Combine(Folder, "inputs.json"));

    /// <summary>A reference logits file (e.g. "logits_adapter").</summary>
    public Tensor Logits(string file)
    {
        using var f = SafetensorsFile.Open(Path.Combine(Folder, file + ".safetensors"));
        return TensorBridge.Read(f, "logits", ScalarType.Float32);
    }

    /// <summary>Asserts <paramref name="actual"/> matches a reference logits file to <see cref="Tolerance"/>; returns the max abs diff.</summary>
    public double AssertLogits(Tensor actual, string file)
    {
        using Tensor expected = Logits(file);
        Assert.Equal(expected.shape, actual.shape);
        double diff;
        using (Tensor d = (actual.detach() - expected).abs().max()) diff = d.item<float>();
        TestContext.Current.TestOutputHelper?.WriteLine($"{Name} {file}: max |diff| = {diff:E2}");
        Assert.True(diff < Tolerance, $"{Name} {file}: max |diff| = {diff} (bound {Tolerance})");
        return diff;
    }

    /// <summary>The causal LM forward with the active adapter (prompt learning included).</summary>
    public static Tensor CausalLogits(PeftModel peft, ModelInputs inputs)
    {
        using (no_grad()) return peft.CausalLMForward(inputs.InputIds, inputs.AttentionMask);
    }

    /// <summary>
    /// Saves <paramref name="adapter"/> with SavePretrained and checks the file against PEFT's:
    /// the same keys, dtypes and shapes (meta.json's layout, less keys of other adapters that PEFT's
    /// substring filter leaked into it), and the same config fields and values.
    /// </summary>
    public void AssertSavesLikePeft(PeftModel peft, string adapter = "default")
    {
        using var scratch = new ScratchFolder();
        peft.SavePretrained(scratch.Path, [adapter]);
        string sub = adapter == "default" ? "" : adapter + "/";
        string dir = AdapterFolder.AdapterDirectory(scratch.Path, adapter);

        var expectedTensors = Saved("adapter_safetensors_layout", sub + "adapter_model.safetensors")["tensors"]!.AsObject()
            .Where(t => !IsForeignKey(t.Key))
            .ToDictionary(t => t.Key, t => $"{t.Value![0]!.GetValue<string>()} [{string.Join(", ", t.Value[1]!.AsArray().Select(d => d!.GetValue<long>()))}]");
        using (var file = SafetensorsFile.Open(Path.Combine(dir, AdapterFolder.WeightsFile)))
        {
            var actual = file.Tensors.ToDictionary(t => t.Name, t => $"{t.DType.ToString().ToUpperInvariant()} {t.ShapeText}");
            Assert.Equal(expectedTensors.OrderBy(t => t.Key, StringComparer.Ordinal), actual.OrderBy(t => t.Key, StringComparer.Ordinal));
            Assert.Equal("pt", file.Metadata["format"]);
        }

        var expectedConfig = Saved("adapter_config_saved", sub + "adapter_config.json");
        var actualConfig = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, AdapterFolder.ConfigFile)))!.AsObject();
        Assert.Equal(expectedConfig.Select(p => p.Key).Order(StringComparer.Ordinal), actualConfig.Select(p => p.Key).Order(StringComparer.Ordinal));
        foreach ((string key, JsonNode? value) in expectedConfig)
            Assert.True(SameValue(key, value, actualConfig[key]), $"{Name}: config field '{key}': PEFT saved {value?.ToJsonString() ?? "null"}, we saved {actualConfig[key]?.ToJsonString() ?? "null"}.");
    }

    // make_cases.py keys meta.json's records by file ("other/adapter_config.json"); its siblings by folder first ("adapter").
    private JsonObject Saved(string record, string file) =>
        (Meta[record]![file] ?? Meta[record]!["adapter"]![file])!.AsObject();

    // PEFT keeps every key that contains the adapter name as a substring, so a file of adapter "a"
    // also holds "...lora_A.b.weight"; a key whose part after the LoRA tensor name is more than "weight" is foreign.
    private static bool IsForeignKey(string key)
    {
        string[] parts = key.Split('.');
        int at = Array.FindIndex(parts, p => p.StartsWith("lora_", StringComparison.Ordinal));
        return at >= 0 && parts.Length - at > 2;
    }

    // target_modules is a Python set in PEFT: its saved order is the set's iteration order, so compare as sets.
    private static bool SameValue(string key, JsonNode? expected, JsonNode? actual)
    {
        if (key == "target_modules" && expected is JsonArray e && actual is JsonArray a)
            return e.Select(n => n!.GetValue<string>()).Order(StringComparer.Ordinal).SequenceEqual(a.Select(n => n!.GetValue<string>()).Order(StringComparer.Ordinal));
        return JsonNode.DeepEquals(Normalized(expected), Normalized(actual));
    }

    // 8 and 8.0 are the same number to PEFT's JSON reader.
    private static JsonNode? Normalized(JsonNode? node) => node switch
    {
        JsonValue v when v.TryGetValue(out double d) => JsonValue.Create(d),
        JsonObject o => new JsonObject(o.Select(p => KeyValuePair.Create(p.Key, Normalized(p.Value)))),
        JsonArray arr => new JsonArray([.. arr.Select(Normalized)]),
        _ => node?.DeepClone(),
    };
}
