using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using PeftHost.Engine.Export;
using PeftHost.Formats.Gguf;
using PeftHost.Models;
using PeftHost.Models.Config;
using PeftHost.Vulkan.Kernels;
using PeftHost.Vulkan.Llama;
using PeftHost.Vulkan.Runtime;
using TorchSharp;

namespace PeftHost.Cli.Commands;

/// <summary>
/// `pefthost bench vulkan [--json]`: the device's copy bandwidth; per weight type the matrix-vector
/// GB/s of weights read (and its fraction of that bandwidth), and prefill / decode tokens/s of
/// make-model's llama medium (generated into a temporary folder, exported in memory per type).
/// </summary>
internal static class BenchVulkanCommand
{
    public static Command Create()
    {
        var json = new Option<bool>("--json") { Description = "Print one JSON object." };
        var types = new Option<string>("--types") { Description = "Comma-separated weight types.", DefaultValueFactory = _ => "f32,f16,q8_0,q4_0" };
        var size = new Option<string>("--size") { Description = "make-model llama size.", DefaultValueFactory = _ => "medium" };
        var decode = (new Option<int>("--decode-tokens") { Description = "Decode steps timed.", DefaultValueFactory = _ => 16 }).AtLeast(1);
        var command = new Command("vulkan", "Vulkan kernels and the device Llama forward: GB/s and tokens/s per weight type.") { json, types, size, decode };
        command.SetAction(parse =>
        {
            string folder = Path.Combine(Path.GetTempPath(), $"pefthost-bench-vulkan-{Guid.NewGuid():N}");
            try
            {
                GgmlType[] wanted = [.. parse.GetValue(types)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(GgufQuant.Parse)];
                bool asJson = parse.GetValue(json);
                using VulkanContext context = VulkanContext.Create(new VulkanContextOptions { Validation = VulkanValidation.Off });
                MemoryBandwidth bw = MemoryBandwidthBenchmark.Run(context);
                Log(asJson, $"device: {context.Device}; copy bandwidth {bw.GigabytesPerSecond:F2} GB/s (vkCmdCopyBuffer {bw.CopyBufferGigabytesPerSecond:F2}, shader {bw.ShaderCopyGigabytesPerSecond:F2})");
                ModelConfig config = ModelPresets.Write("llama", parse.GetValue(size)!, folder, 0);
                LlamaConfig llama = LlamaGgufExporter.CheckSupported(config);
                (_, torch.nn.Module model) = ModelFactory.Load(folder);
                var results = new JsonArray();
                using (model)
                {
                    foreach (GgmlType type in wanted)
                    {
                        MatVecBenchmarkResult mv = MatVecBenchmark.Run(context, type, 4096, 4096);
                        string path = Path.Combine(folder, $"model-{GgmlTypeTraits.Name(type)}.gguf");
                        LlamaGgufExporter.Build(model, llama, folder, type, "bench").Write(path);
                        LlamaDeviceBenchmarkResult r;
                        using (GgufFile file = GgufFile.Open(path))
                        using (var device = new LlamaDeviceModel(context, file, contextSize: 64 + parse.GetValue(decode) + 1))
                            r = LlamaDeviceBenchmark.Run(device, 64, parse.GetValue(decode));
                        File.Delete(path);
                        Log(asJson, $"{GgmlTypeTraits.Name(type),-5} matvec 4096x4096 {mv.SecondsPerProduct * 1e3,7:F2} ms {mv.GigabytesPerSecond,6:F2} GB/s ({mv.GigabytesPerSecond / bw.GigabytesPerSecond:P0} of bandwidth) | "
                            + $"prefill {r.PrefillTokens} tokens {r.PrefillTokensPerSecond,6:F1} tokens/s | decode {r.DecodeTokensPerSecond,6:F2} tokens/s ({r.DispatchesPerToken} dispatches/token)");
                        results.Add(new JsonObject
                        {
                            ["type"] = GgmlTypeTraits.Name(type),
                            ["matvec"] = new JsonObject { ["rows"] = mv.Rows, ["cols"] = mv.Cols, ["ms"] = mv.SecondsPerProduct * 1e3, ["gb_per_s"] = mv.GigabytesPerSecond,
                                ["bandwidth_fraction"] = mv.GigabytesPerSecond / bw.GigabytesPerSecond, ["shader"] = mv.ShaderName },
                            ["prefill"] = new JsonObject { ["tokens"] = r.PrefillTokens, ["tokens_per_s"] = r.PrefillTokensPerSecond },
                            ["decode"] = new JsonObject { ["tokens"] = r.DecodeTokens, ["tokens_per_s"] = r.DecodeTokensPerSecond, ["dispatches_per_token"] = r.DispatchesPerToken },
                        });
                    }
                }
                if (asJson)
                {
                    var report = new JsonObject
                    {
                        ["device"] = context.Device.ToString(),
                        ["model"] = $"make-model llama {parse.GetValue(size)} (hidden {config.HiddenSize}, {config.NumLayers} layers, vocab {config.VocabSize})",
                        ["bandwidth_gb_per_s"] = bw.GigabytesPerSecond,
                        ["copy_buffer_gb_per_s"] = bw.CopyBufferGigabytesPerSecond,
                        ["shader_copy_gb_per_s"] = bw.ShaderCopyGigabytesPerSecond,
                        ["types"] = results,
                    };
                    Console.WriteLine(report.ToJsonString(new JsonSerializerOptions { WriteIndented = false }));
                }
                return 0;
            }
            finally
            {
                if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
            }
        });
        return command;
    }

    private static void Log(bool json, string line)
    {
        if (json) Console.Error.WriteLine(line);
        else Console.WriteLine(line);
    }
}
