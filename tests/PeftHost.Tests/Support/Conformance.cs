using PeftHost.Formats.Safetensors;
using PeftHost.Models.Checkpoint;
using System.Text.Json.Nodes;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Tests.Support;

/// <summary>
/// The shared conformance samples: $PEFTHOST_CONFORMANCE, or the first folder above the test
/// binary that holds shared/conformance (in CI the clone has shared/ beside it).
/// </summary>
internal static class Conformance
{
    public static string Root
    {
        get
        {
            string? env = Environment.GetEnvironmentVariable("PEFTHOST_CONFORMANCE");
            if (!string.IsNullOrEmpty(env))
                return Directory.Exists(env) ? env : throw new DirectoryNotFoundException($"PEFTHOST_CONFORMANCE is '{env}', which does not exist.");
            for (string? d = AppContext.BaseDirectory; d is not null; d = Path.GetDirectoryName(d))
            {
                string candidate = Path.Combine(d, "shared", "conformance");
                if (Directory.Exists(candidate)) return candidate;
            }
            throw new DirectoryNotFoundException($"No shared/conformance folder above {AppContext.BaseDirectory}; set PEFTHOST_CONFORMANCE.");
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
