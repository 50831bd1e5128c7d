using System.Text.Json.Nodes;
using PeftHost.Engine.Inference.Backends;
using PeftHost.Formats.Safetensors;

namespace PeftHost.Engine.Inference;

/// <summary>
/// `logits` on any <see cref="IInferenceBackend"/>: each row of inputs.json's input_ids run from
/// position 0 (unpadded: attention_mask, if given, must be all ones), written as the same safetensors
/// file as the TorchSharp path (one float32 tensor "logits" [batch, seq, vocab]).
/// </summary>
public static class BackendLogits
{
    /// <summary>Runs every row and writes <paramref name="outPath"/>; returns the shape.</summary>
    public static long[] Run(IInferenceBackend backend, string inputsPath, string outPath, IReadOnlyList<AdapterScale>? adapters = null)
    {
        ArgumentNullException.ThrowIfNull(backend);
        JsonNode json = JsonNode.Parse(File.ReadAllText(inputsPath)) ?? throw new InvalidDataException($"{inputsPath}: empty.");
        int[][] rows = [.. (json["input_ids"]?.AsArray() ?? throw new InvalidDataException($"{inputsPath}: no input_ids."))
            .Select(r => r!.AsArray().Select(v => v!.GetValue<int>()).ToArray())];
        if (rows.Length == 0 || rows.Any(r => r.Length != rows[0].Length || r.Length == 0))
            throw new InvalidDataException($"{inputsPath}: input_ids must be a non-empty rectangular batch.");
        if (json["attention_mask"] is JsonArray mask && mask.Any(r => r!.AsArray().Any(v => v!.GetValue<int>() != 1)))
            throw new NotSupportedException($"the {backend.Kind.Name()} backend runs unpadded rows: attention_mask must be all ones (run padded batches with --backend torch).");
        int vocab = backend.VocabSize;
        var all = new float[(long)rows.Length * rows[0].Length * vocab];
        for (int b = 0; b < rows.Length; b++)
        {
            float[] logits = backend.Logits(rows[b], adapters);
            logits.CopyTo(all, (long)b * logits.Length);
        }
        long[] shape = [rows.Length, rows[0].Length, vocab];
        SafetensorsWriter.Write(outPath, [SafetensorsWriteTensor.FromSingles("logits", shape, all)], new Dictionary<string, string> { ["format"] = "pt" });
        return shape;
    }
}
