using PeftHost.Formats.Gguf;

namespace PeftHost.Vulkan.Llama;

/// <summary>
/// A GGUF-LoRA file (llama.cpp's adapter format: general.type adapter, adapter.type lora,
/// adapter.lora.alpha, tensors "&lt;base tensor&gt;.lora_a" [r, in] and ".lora_b" [out, r]) read into
/// float32 pairs, checked against the base model it is applied to.
/// </summary>
public sealed class LoraGgufAdapter
{
    private LoraGgufAdapter(string name, float alpha, IReadOnlyDictionary<string, LoraPair> pairs)
    {
        Name = name;
        Alpha = alpha;
        Pairs = pairs;
    }

    /// <summary>The adapter's name.</summary>
    public string Name { get; }

    /// <summary>adapter.lora.alpha (0: no alpha / r scaling, as llama.cpp).</summary>
    public float Alpha { get; }

    /// <summary>The pairs by base tensor name.</summary>
    public IReadOnlyDictionary<string, LoraPair> Pairs { get; }

    /// <summary>Reads <paramref name="file"/>.</summary>
    /// <exception cref="GgufFormatException">Not a LoRA adapter for architecture llama, or a pair is incomplete or mis-shaped.</exception>
    public static LoraGgufAdapter Read(GgufFile file, string name)
    {
        ArgumentNullException.ThrowIfNull(file);
        string Text(string key) => file.TryGetMetadata(key, out GgufValue v) ? v.AsString() : "";
        if (Text("general.type") != "adapter" || Text("adapter.type") != "lora")
            throw new GgufFormatException(file.FileName, "general.type", $"is '{Text("general.type")}' with adapter.type '{Text("adapter.type")}': not a GGUF-LoRA adapter (adapter, lora).");
        if (Text("general.architecture") != "llama")
            throw new GgufFormatException(file.FileName, "general.architecture", $"is '{Text("general.architecture")}'; the Vulkan path runs llama.");
        float alpha = file.TryGetMetadata("adapter.lora.alpha", out GgufValue a) ? (float)a.AsDouble() : 0f;
        var pairs = new Dictionary<string, LoraPair>(StringComparer.Ordinal);
        foreach (GgufTensorInfo t in file.Tensors)
        {
            bool isA = t.Name.EndsWith(".lora_a", StringComparison.Ordinal);
            if (!isA && !t.Name.EndsWith(".lora_b", StringComparison.Ordinal))
                throw new GgufFormatException(file.FileName, t.Name, "is neither a .lora_a nor a .lora_b tensor; the Vulkan path applies LoRA pairs only.");
            string baseName = t.Name[..^7];
            if (!pairs.ContainsKey(baseName))
            {
                string other = baseName + (isA ? ".lora_b" : ".lora_a");
                if (!file.Tensors.Any(x => x.Name == other)) throw new GgufFormatException(file.FileName, t.Name, $"has no partner {other}.");
                GgufTensorInfo ta = file.GetTensor(baseName + ".lora_a"), tb = file.GetTensor(baseName + ".lora_b");
                if (baseName == "token_embd.weight")
                    throw new NotSupportedException($"{file.FileName}: LoRA on token_embd is not applied by the Vulkan path (its embedding lookup has no low-rank term); merge the adapter instead.");
                if (ta.Dimensions.Count != 2 || tb.Dimensions.Count != 2 || ta.Rows != tb.Columns)
                    throw new GgufFormatException(file.FileName, baseName, $"lora_a [{string.Join(", ", ta.Dimensions)}] and lora_b [{string.Join(", ", tb.Dimensions)}] disagree on the rank.");
                pairs[baseName] = new LoraPair((int)ta.Rows, (int)ta.Columns, (int)tb.Rows,
                    GgmlQuantization.Dequantize(ta.Type, file.ReadTensorBytes(ta)), GgmlQuantization.Dequantize(tb.Type, file.ReadTensorBytes(tb)));
            }
        }
        return new LoraGgufAdapter(name, alpha, pairs);
    }
}

/// <summary>One adapted weight: A [Rank, In] and B [Out, Rank], row-major float32.</summary>
public sealed record LoraPair(int Rank, int In, int Out, float[] A, float[] B);
