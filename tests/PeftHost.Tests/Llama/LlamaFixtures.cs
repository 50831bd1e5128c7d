using System.Text.Json.Nodes;
using PeftHost.Engine.Inference;
using PeftHost.Engine.Inference.Backends;
using PeftHost.Formats.Gguf;
using PeftHost.Formats.Safetensors;
using PeftHost.Tests.PeftReference;
using PeftHost.Tests.Support;

namespace PeftHost.Tests.Llama;

/// <summary>Helpers for the GGUF backends: options over PEFT-made cases with a private cache, reference logits, copies of adapters with edited configs.</summary>
internal static class LlamaFixtures
{
    public static string CaseFolder(string name) => Path.Combine(PeftCase.Root, name);

    public static InferenceBackendOptions Options(InferenceBackendKind kind, string modelFolder, string cache, GgmlType quant = GgmlType.F32, params AdapterSpec[] adapters) => new()
    {
        Kind = kind,
        ModelFolder = modelFolder,
        Adapters = adapters,
        PluginsFolder = PluginDirs.Installed,
        Quant = quant,
        CacheDirectory = cache,
    };

    /// <summary>inputs.json's rows.</summary>
    public static int[][] Rows(string inputsPath) =>
        [.. JsonNode.Parse(File.ReadAllText(inputsPath))!["input_ids"]!.AsArray().Select(r => r!.AsArray().Select(v => v!.GetValue<int>()).ToArray())];

    /// <summary>A safetensors reference as float32, row-major.</summary>
    public static float[] Reference(string path, string key = "logits")
    {
        using SafetensorsFile f = SafetensorsFile.Open(path);
        return f.ReadSingles(key);
    }

    /// <summary>Every row's logits from the backend, concatenated as the reference files store them.</summary>
    public static float[] AllLogits(IInferenceBackend backend, int[][] rows, IReadOnlyList<AdapterScale>? adapters = null) =>
        [.. rows.SelectMany(r => backend.Logits(r, adapters))];

    public static double MaxAbsDiff(float[] a, float[] b)
    {
        if (a.Length != b.Length) throw new ArgumentException($"lengths differ: {a.Length} and {b.Length}.");
        double m = 0;
        for (int i = 0; i < a.Length; i++) m = Math.Max(m, Math.Abs(a[i] - b[i]));
        return m;
    }

    /// <summary>A copy of an adapter folder whose adapter_config.json is changed by <paramref name="edit"/>.</summary>
    public static string EditedAdapter(string adapterFolder, string into, Action<JsonObject> edit)
    {
        Directory.CreateDirectory(into);
        File.Copy(Path.Combine(adapterFolder, "adapter_model.safetensors"), Path.Combine(into, "adapter_model.safetensors"), overwrite: true);
        JsonObject config = JsonNode.Parse(File.ReadAllText(Path.Combine(adapterFolder, "adapter_config.json")))!.AsObject();
        edit(config);
        File.WriteAllText(Path.Combine(into, "adapter_config.json"), config.ToJsonString());
        return into;
    }
}
