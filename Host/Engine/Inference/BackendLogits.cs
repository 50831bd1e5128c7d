using PeftHost.Engine.Inference.Backends;
using PeftHost.Formats.Safetensors;
using PeftHost.Models;

namespace PeftHost.Engine.Inference;

/// <summary>
/// `logits` on any <see cref="IInferenceBackend"/>: each row of inputs.json's input_ids run from
/// position 0 (unpadded: attention_mask, if given, must be all ones), written as the same safetensors
/// file as the TorchSharp path (one float32 tensor "logits" [batch, seq, vocab]).
/// </summary>
public static class BackendLogits
{
    /// <summary>Runs every row and writes <paramref name="outPath"/>; returns the shape.</summary>
    /// <exception cref="InvalidDataException">inputs.json is malformed, or an id is outside the vocabulary (the message names the file and the entry).</exception>
    /// <exception cref="NotSupportedException">The attention mask pads a row.</exception>
    public static long[] Run(IInferenceBackend backend, string inputsPath, string outPath, IReadOnlyList<AdapterScale>? adapters = null)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ModelInputs.Arrays inputs = ModelInputs.ReadArrays(inputsPath);
        if (inputs.AttentionMask is { } mask && mask.Cast<long>().Any(v => v != 1))
            throw new NotSupportedException($"{inputsPath}: the {backend.Kind.Name()} backend runs unpadded rows: attention_mask must be all ones (run padded batches with --backend torch).");
        int[][] rows = new int[inputs.InputIds.GetLength(0)][];
        for (int b = 0; b < rows.Length; b++)
        {
            rows[b] = new int[inputs.InputIds.GetLength(1)];
            for (int t = 0; t < rows[b].Length; t++)
            {
                long id = inputs.InputIds[b, t];
                // Checked here, where the file and the field are known (the backend checks its ids again).
                if (id < 0 || id >= backend.VocabSize)
                    throw new InvalidDataException($"{inputsPath}: input_ids[{b}][{t}] is {id}, outside the vocabulary [0, {backend.VocabSize}) of the model.");
                rows[b][t] = (int)id;
            }
        }
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
