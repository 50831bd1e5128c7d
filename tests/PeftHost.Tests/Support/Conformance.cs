using PeftHost.Formats.Safetensors;
using PeftHost.Models.Checkpoint;
using System.Text.Json.Nodes;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Tests.Support;

/// <summary>
/// The conformance samples real transformers and PEFT wrote, committed under
/// tests/fixtures/conformance (copied from the project's shared reference folder; see its README).
/// </summary>
internal static class Conformance
{
    public static string Root
    {
        get
        {
            for (string? d = AppContext.BaseDirectory; d is not null; d = Path.GetDirectoryName(d))
            {
                string candidate = Path.Combine(d, "tests", "fixtures", "conformance");
                if (File.Exists(Path.Combine(d, "Host.sln")) && Directory.Exists(candidate)) return candidate;
            }
            throw new DirectoryNotFoundException($"No tests/fixtures/conformance in the repository above {AppContext.BaseDirectory}.");
        }
    }

    public static string Case(string name) => Path.Combine(Root, name);

    /// <summary>A tensor of a reference file (float32, CPU).</summary>
    public static Tensor Reference(string relativePath, string key = "logits")
    {
        using var file = SafetensorsFile.Open(Path.Combine(Root, relativePath));
        return TensorBridge.Read(file, key, ScalarType.Float32);
    }

    /// <summary>An int64 tensor [batch, seq] from inputs.json.</summary>
    public static Tensor? Inputs(string caseName, string key)
    {
        JsonNode json = JsonNode.Parse(File.ReadAllText(Path.Combine(Case(caseName), "inputs.json")))!;
        if (json[key] is not JsonArray rows) return null;
        long[][] data = [.. rows.Select(r => r!.AsArray().Select(v => v!.GetValue<long>()).ToArray())];
        return torch.tensor(data.SelectMany(r => r).ToArray(), [data.Length, data[0].Length], dtype: ScalarType.Int64);
    }
}
