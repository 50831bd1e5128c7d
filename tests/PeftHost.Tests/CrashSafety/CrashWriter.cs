using System.Runtime.CompilerServices;
using System.Text.Json.Nodes;
using PeftHost.Abstractions.State;
using PeftHost.Engine.Inference;
using PeftHost.Engine.Peft;
using PeftHost.Formats.Gguf;
using PeftHost.Formats.Safetensors;
using PeftHost.Tests.Support;
using static TorchSharp.torch;

namespace PeftHost.Tests.CrashSafety;

/// <summary>
/// The child process of the SIGKILL tests: this test executable started with PEFTHOST_CRASH_WRITER="KIND|FOLDER"
/// writes version 1, 2, 1, 2... of KIND's files into FOLDER for ever, printing "wrote N" after each, until killed.
/// A module initializer catches the variable before xunit's entry point runs; without it nothing happens.
/// </summary>
internal static class CrashWriter
{
    public const string Variable = "PEFTHOST_CRASH_WRITER";

    /// <summary>The writers that exist now, by the name the test uses.</summary>
    public static IReadOnlyList<string> Kinds { get; } = ["safetensors", "safetensors-shards", "gguf", "adapter", "merged"];

    [ModuleInitializer]
    internal static void RunWhenAsked()
    {
        string? request = Environment.GetEnvironmentVariable(Variable);
        if (string.IsNullOrEmpty(request)) return;
        string[] parts = request.Split('|');
        Directory.CreateDirectory(parts[1]);
        for (long n = 0; ; n++)
        {
            Write(parts[0], parts[1], (int)(n % 2) + 1);
            Console.Out.WriteLine($"wrote {n}");
            Console.Out.Flush();
        }
    }

    /// <summary>Writes version <paramref name="version"/> (1 or 2) of <paramref name="kind"/>'s files into <paramref name="folder"/>.</summary>
    public static void Write(string kind, string folder, int version)
    {
        switch (kind)
        {
            case "safetensors":
                SafetensorsWriter.Write(Path.Combine(folder, "model.safetensors"), Tensors(version), new Dictionary<string, string> { ["version"] = $"{version}" });
                break;
            case "safetensors-shards":
                SafetensorsWriter.WriteSharded(folder, Tensors(version), maxShardBytes: 3 << 20, new Dictionary<string, string> { ["version"] = $"{version}" });
                break;
            case "gguf":
                var gguf = new GgufWriter();
                gguf.SetMetadata("test.version", GgufValue.FromUInt32((uint)version));
                for (int t = 0; t < 4; t++) gguf.AddTensor($"t{t}", [1 << 18], GgmlType.F32, Values(version, t, 1 << 18));
                gguf.Write(Path.Combine(folder, "model.gguf"));
                break;
            case "adapter":
                using (var state = new AdapterState("default", new JsonObject { ["peft_type"] = "LORA", ["r"] = 8, ["version"] = version },
                    Enumerable.Range(0, 4).ToDictionary(t => $"model.layers.{t}.self_attn.q_proj.lora_A.weight", t => tensor(Values(version, t, 1 << 18)))))
                    AdapterFolder.Write(folder, state, prefixKeys: true);
                break;
            case "merged":
                MergedModelWriter.Merge(Conformance.Case("base_llama"), [AdapterSpec.FromFolder(Path.Combine(Conformance.Case("lora_qv"), "adapter"))],
                    folder, PluginDirs.Installed, version == 1 ? ScalarType.Float32 : ScalarType.Float16, force: true);
                break;
            default:
                throw new ArgumentException($"Unknown writer '{kind}'.", nameof(kind));
        }
    }

    public static float[] Values(int version, int tensor, int count)
    {
        var values = new float[count];
        for (int i = 0; i < count; i++) values[i] = version * 1_000_000f + tensor * 1000 + i % 1000;
        return values;
    }

    // About 4 MB per version, so a kill often lands inside a write (and its fsync).
    private static List<SafetensorsWriteTensor> Tensors(int version) =>
        [.. Enumerable.Range(0, 4).Select(t => new SafetensorsWriteTensor($"t{t}", SafetensorsDType.F32, [1 << 18], s =>
            s.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(Values(version, t, 1 << 18).AsSpan()))))];
}
