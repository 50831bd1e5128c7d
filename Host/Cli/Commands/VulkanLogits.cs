using System.Text.Json.Nodes;
using PeftHost.Engine.Export;
using PeftHost.Engine.Inference;
using PeftHost.Formats.Gguf;
using PeftHost.Formats.Safetensors;
using PeftHost.Vulkan.Llama;
using PeftHost.Vulkan.Runtime;

namespace PeftHost.Cli.Commands;

/// <summary>
/// `pefthost logits --backend vulkan --quant TYPE`: exports the (merged) model to a temporary GGUF
/// file, runs the device forward over every position of each row and writes the same
/// safetensors file as the TorchSharp backend (one float32 tensor "logits" [batch, seq, vocab]).
/// </summary>
internal static class VulkanLogits
{
    public static long[] Run(string modelFolder, IReadOnlyList<LogitsRunner.AdapterSpec> adapters, string inputsPath, string outPath, string pluginsFolder, GgmlType quant)
    {
        JsonNode json = JsonNode.Parse(File.ReadAllText(inputsPath)) ?? throw new InvalidDataException($"{inputsPath}: empty.");
        int[][] rows = [.. (json["input_ids"]?.AsArray() ?? throw new InvalidDataException($"{inputsPath}: no input_ids."))
            .Select(r => r!.AsArray().Select(v => v!.GetValue<int>()).ToArray())];
        if (rows.Length == 0 || rows.Any(r => r.Length != rows[0].Length || r.Length == 0))
            throw new InvalidDataException($"{inputsPath}: input_ids must be a non-empty rectangular batch.");
        if (json["attention_mask"] is JsonArray mask && mask.Any(r => r!.AsArray().Any(v => v!.GetValue<int>() != 1)))
            throw new NotSupportedException("the vulkan backend runs unpadded rows: attention_mask must be all ones (run padded batches with --backend torch).");

        string temp = Path.Combine(Path.GetTempPath(), $"pefthost-logits-{Guid.NewGuid():N}.gguf");
        try
        {
            LlamaGgufExporter.Export(modelFolder, adapters, pluginsFolder, quant, temp);
            using VulkanContext context = VulkanContext.Create();
            using GgufFile file = GgufFile.Open(temp);
            using var model = new LlamaDeviceModel(context, file, contextSize: rows[0].Length);
            int vocab = model.Parameters.VocabSize;
            var all = new float[(long)rows.Length * rows[0].Length * vocab];
            for (int b = 0; b < rows.Length; b++)
            {
                float[] logits = model.ComputeLogits(rows[b]);
                logits.CopyTo(all, (long)b * logits.Length);
            }
            long[] shape = [rows.Length, rows[0].Length, vocab];
            SafetensorsWriter.Write(outPath, [SafetensorsWriteTensor.FromSingles("logits", shape, all)], new Dictionary<string, string> { ["format"] = "pt" });
            return shape;
        }
        finally
        {
            File.Delete(temp);
        }
    }
}
