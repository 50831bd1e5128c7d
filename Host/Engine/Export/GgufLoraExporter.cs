using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using PeftHost.Formats;
using PeftHost.Formats.Gguf;
using PeftHost.Formats.Safetensors;
using PeftHost.Models.Config;

namespace PeftHost.Engine.Export;

/// <summary>
/// A PEFT LoRA adapter folder as the GGUF-LoRA file llama.cpp's convert_lora_to_gguf.py writes, so
/// llama.cpp's <c>--lora</c>, LLamaSharp and Ollama's <c>ADAPTER</c> apply it unmerged:
/// <c>general.type</c> adapter, <c>adapter.type</c> lora, one <c>adapter.lora.alpha</c>, the base's
/// <c>general.architecture</c>, and per adapted weight the base GGUF tensor's name plus
/// <c>.lora_a</c> (PEFT's lora_A, [r, in]) and <c>.lora_b</c> (lora_B, [out, r]); for
/// <c>token_embd</c> lora_a is lora_embedding_A transposed (llama.cpp gathers its rows). lora_B rows of
/// q_proj and k_proj are permuted as the base export permutes those weights. llama.cpp scales each
/// pair by alpha / r (r read from the tensor), so PEFT's own scaling of the module (alpha_pattern,
/// rsLoRA's alpha / √r) is folded into lora_b. This reads PEFT's file format, as the converter does;
/// what the format cannot express is refused with the reason.
/// </summary>
public static class GgufLoraExporter
{
    private static readonly Regex LayerModule = new(@"^model\.layers\.(\d+)\.(self_attn\.(q|k|v|o)_proj|mlp\.(gate|up|down)_proj)$", RegexOptions.CultureInvariant);

    /// <summary>Writes <paramref name="adapterFolder"/> (a LoRA adapter of <paramref name="modelFolder"/>) to <paramref name="outPath"/>, atomically.</summary>
    /// <exception cref="NotSupportedException">The adapter holds what GGUF-LoRA cannot express (DoRA, modules_to_save, biases, another method); the message says what.</exception>
    public static GgufLoraSummary Export(string modelFolder, string adapterFolder, GgmlType quant, string outPath)
    {
        GgufWriter writer = Build(modelFolder, adapterFolder, quant, out GgufLoraSummary summary);
        AtomicFile.Write(outPath, writer.Write);
        return summary;
    }

    /// <summary>
    /// Why <paramref name="adapterFolder"/> cannot be written as GGUF-LoRA, or null when it can. The
    /// reasons are about the adapter's config; tensor names are checked by <see cref="Build"/>.
    /// </summary>
    public static string? Refusal(string adapterFolder)
    {
        (JsonObject config, string path) = ReadConfig(adapterFolder);
        string type = config["peft_type"]?.GetValue<string>() ?? "";
        if (type != "LORA")
            return $"{path}: peft_type {type} is not LoRA, and GGUF-LoRA holds LoRA's low-rank pairs only.";
        if (Flag(config, "use_dora"))
            return $"{path}: a DoRA adapter (use_dora) rescales each weight column by its magnitude vector, which GGUF-LoRA cannot express (llama.cpp only adds scale x B A); merge it into the base instead.";
        if (config["modules_to_save"] is JsonArray { Count: > 0 } saved)
            return $"{path}: modules_to_save ({string.Join(", ", saved.Select(s => s?.ToString()))}) are full trained copies of base weights, which GGUF-LoRA cannot hold; merge the adapter into the base instead.";
        string bias = config["bias"]?.GetValue<string>() ?? "none";
        if (bias != "none" || Flag(config, "lora_bias"))
            return $"{path}: trained biases (bias '{bias}'{(Flag(config, "lora_bias") ? ", lora_bias" : "")}) have no place in GGUF-LoRA; merge the adapter into the base instead.";
        if (config["layer_replication"] is JsonArray { Count: > 0 })
            return $"{path}: layer_replication changes the base's layers, which GGUF-LoRA cannot express.";
        return null;
    }

    /// <summary>As <see cref="Export"/>, returning the writer (nothing written to disk).</summary>
    public static GgufWriter Build(string modelFolder, string adapterFolder, GgmlType quant, out GgufLoraSummary summary)
    {
        if (quant is not (GgmlType.F32 or GgmlType.F16 or GgmlType.Q8_0))
            throw new ArgumentException($"GGUF-LoRA export writes f32, f16 or q8_0 (not {GgmlTypeTraits.Name(quant)}): low-rank factors are too small for coarser types.");
        ModelConfig modelConfig = ModelConfigReader.Read(modelFolder);
        LlamaConfig llama = LlamaGgufExporter.CheckSupported(modelConfig);
        if (Refusal(adapterFolder) is string refusal) throw new NotSupportedException(refusal);
        (JsonObject config, string configPath) = ReadConfig(adapterFolder);
        double alpha = Number(config, "lora_alpha", configPath);
        bool rsLora = Flag(config, "use_rslora");
        JsonObject alphaPattern = config["alpha_pattern"] as JsonObject ?? [];

        string weightsPath = Path.Combine(adapterFolder, "adapter_model.safetensors");
        if (!File.Exists(weightsPath)) throw new FileNotFoundException($"No adapter_model.safetensors in {Path.GetFullPath(adapterFolder)}.", weightsPath);
        using SafetensorsFile file = SafetensorsFile.Open(weightsPath);
        var pairs = new SortedDictionary<string, (string? A, string? B)>(StringComparer.Ordinal);
        foreach (SafetensorsTensorInfo t in file.Tensors)
        {
            string key = t.Name.StartsWith("base_model.model.", StringComparison.Ordinal) ? t.Name["base_model.model.".Length..] : t.Name;
            (string module, bool isA) = Split(key, weightsPath);
            pairs.TryGetValue(module, out (string? A, string? B) pair);
            pairs[module] = isA ? (t.Name, pair.B) : (pair.A, t.Name);
        }
        if (pairs.Count == 0) throw new InvalidDataException($"{weightsPath}: no lora_A / lora_B tensors.");

        var writer = new GgufWriter();
        string name = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(adapterFolder)));
        writer.SetMetadata("general.architecture", GgufValue.FromString("llama"));
        writer.SetMetadata("general.type", GgufValue.FromString("adapter"));
        writer.SetMetadata("general.name", GgufValue.FromString(name));
        writer.SetMetadata("general.file_type", GgufValue.FromUInt32(GgufQuant.FileType(quant)));
        writer.SetMetadata("general.quantization_version", GgufValue.FromUInt32(2));
        writer.SetMetadata("adapter.type", GgufValue.FromString("lora"));
        writer.SetMetadata("adapter.lora.alpha", GgufValue.FromFloat32((float)alpha));
        var ranks = new SortedSet<int>();
        foreach ((string module, (string? aName, string? bName)) in pairs)
        {
            if (aName is null || bName is null)
                throw new InvalidDataException($"{weightsPath}: module {module} has {(aName is null ? "lora_B without lora_A" : "lora_A without lora_B")}.");
            string target = TargetName(module, llama, weightsPath);
            SafetensorsTensorInfo ai = file.Info(aName), bi = file.Info(bName);
            if (ai.Shape.Length != 2 || bi.Shape.Length != 2)
                throw new InvalidDataException($"{weightsPath}: {aName} {ai.ShapeText} and {bName} {bi.ShapeText} must both be matrices.");
            bool embedding = target == "token_embd.weight";
            // Linear: A [r, in], B [out, r]. Embedding: A [r, vocab], B [hidden, r].
            int r = (int)ai.Shape[0];
            if (bi.Shape[1] != r)
                throw new InvalidDataException($"{weightsPath}: {aName} {ai.ShapeText} and {bName} {bi.ShapeText} disagree on the rank (lora_A rows must equal lora_B columns).");
            (long outDim, long inDim) = ExpectedShape(target, llama);
            if (bi.Shape[0] != outDim || ai.Shape[1] != inDim)
                throw new InvalidDataException($"{weightsPath}: {module} has lora_B {bi.ShapeText} and lora_A {ai.ShapeText}; the base's {target} needs lora_B [{outDim}, {r}] and lora_A [{r}, {inDim}].");
            ranks.Add(r);
            float[] a = file.ReadSingles(aName);
            float[] b = file.ReadSingles(bName);
            // PEFT scales this module's B·A by alpha_m / r (alpha_m / sqrt(r) with rsLoRA); llama.cpp by alpha / r.
            double moduleAlpha = PatternAlpha(alphaPattern, module, alpha);
            double peftScale = rsLora ? moduleAlpha / Math.Sqrt(r) : moduleAlpha / r;
            float fold = (float)(peftScale / (alpha / r));
            if (fold != 1f)
                for (int i = 0; i < b.Length; i++) b[i] *= fold;
            if (target.EndsWith("attn_q.weight", StringComparison.Ordinal)) b = PermuteRows(b, (int)outDim, r, llama.NumHeads);
            else if (target.EndsWith("attn_k.weight", StringComparison.Ordinal)) b = PermuteRows(b, (int)outDim, r, llama.NumKeyValueHeads);
            if (embedding)
            {
                a = Transpose(a, r, (int)inDim);
                Add(writer, target + ".lora_a", a, (int)inDim, r, quant);
            }
            else
            {
                Add(writer, target + ".lora_a", a, r, (int)inDim, quant);
            }
            Add(writer, target + ".lora_b", b, (int)outDim, r, quant);
        }
        summary = new GgufLoraSummary(name, quant, (float)alpha, pairs.Count, [.. ranks]);
        return writer;
    }

    // "model.layers.0.self_attn.q_proj.lora_A.weight" -> ("model.layers.0.self_attn.q_proj", true); embeddings' lora_embedding_A too.
    private static (string Module, bool IsA) Split(string key, string path)
    {
        foreach ((string suffix, bool isA) in new[] { (".lora_A.weight", true), (".lora_B.weight", false), (".lora_embedding_A", true), (".lora_embedding_B", false) })
        {
            if (key.EndsWith(suffix, StringComparison.Ordinal)) return (key[..^suffix.Length], isA);
        }
        throw new NotSupportedException($"{path}: tensor '{key}' is not a LoRA pair tensor (lora_A / lora_B); GGUF-LoRA holds nothing else.");
    }

    private static string TargetName(string module, LlamaConfig config, string path)
    {
        if (module == "model.embed_tokens") return "token_embd.weight";
        if (module == "lm_head")
        {
            if (config.TieWordEmbeddings)
                throw new NotSupportedException($"{path}: the adapter targets lm_head, which this model ties to its embeddings (the base GGUF has no output tensor for it).");
            return "output.weight";
        }
        Match m = LayerModule.Match(module);
        if (!m.Success)
            throw new NotSupportedException($"{path}: LoRA on '{module}' has no tensor in llama.cpp's llama graph (q/k/v/o, gate/up/down, embed_tokens and lm_head do).");
        string layer = m.Groups[1].Value;
        string name = m.Groups[3].Success
            ? m.Groups[3].Value switch { "q" => "attn_q", "k" => "attn_k", "v" => "attn_v", _ => "attn_output" }
            : "ffn_" + m.Groups[4].Value;
        return $"blk.{layer}.{name}.weight";
    }

    // The base weight's torch shape [out, in] (token_embd: [hidden, vocab] as the delta's [out, in]).
    private static (long Out, long In) ExpectedShape(string target, LlamaConfig c)
    {
        string kind = target.Split('.')[^2];
        return kind switch
        {
            "token_embd" => (c.HiddenSize, c.VocabSize),
            "output" => (c.VocabSize, c.HiddenSize),
            "attn_q" => (c.NumHeads * c.HeadDim, c.HiddenSize),
            "attn_k" or "attn_v" => (c.NumKeyValueHeads * c.HeadDim, c.HiddenSize),
            "attn_output" => (c.HiddenSize, c.NumHeads * c.HeadDim),
            "ffn_gate" or "ffn_up" => (c.IntermediateSize, c.HiddenSize),
            _ => (c.HiddenSize, c.IntermediateSize),
        };
    }

    // PEFT 0.13's get_pattern_key: the first alpha_pattern key that matches the module path's end ("(.*\.)?key$").
    private static double PatternAlpha(JsonObject pattern, string module, double fallback)
    {
        foreach ((string key, JsonNode? value) in pattern)
        {
            if (value is not null && Regex.IsMatch(module, $@"^(.*\.)?{key}$", RegexOptions.CultureInvariant)) return value.GetValue<double>();
        }
        return fallback;
    }

    // LlamaGgufExporter.Permute on the rows of a [rows, cols] matrix: per head, rotate-half order to interleaved pairs.
    internal static float[] PermuteRows(float[] m, int rows, int cols, int heads)
    {
        int half = rows / heads / 2;
        var result = new float[m.Length];
        for (int h = 0; h < heads; h++)
            for (int i = 0; i < half; i++)
                for (int j = 0; j < 2; j++)
                {
                    int from = h * 2 * half + j * half + i;   // [head, j, i] in the source
                    int to = h * 2 * half + i * 2 + j;        // [head, i, j] after the transpose
                    Array.Copy(m, (long)from * cols, result, (long)to * cols, cols);
                }
        return result;
    }

    private static float[] Transpose(float[] m, int rows, int cols)
    {
        var t = new float[m.Length];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++)
                t[(long)c * rows + r] = m[(long)r * cols + c];
        return t;
    }

    private static void Add(GgufWriter writer, string name, float[] values, int rows, int cols, GgmlType quant)
    {
        GgmlType type = GgufQuant.ForTensor(quant, [rows, cols]);
        writer.AddTensor(name, [(ulong)cols, (ulong)rows], type, values);
    }

    private static (JsonObject Config, string Path) ReadConfig(string adapterFolder)
    {
        string path = Path.Combine(adapterFolder, "adapter_config.json");
        if (!File.Exists(path)) throw new FileNotFoundException($"No adapter_config.json in {Path.GetFullPath(adapterFolder)}: not a PEFT adapter folder.", path);
        try
        {
            return (JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new InvalidDataException($"{path}: not a JSON object."), path);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: invalid JSON: {e.Message}", e);
        }
    }

    private static bool Flag(JsonObject o, string key) => o[key] is JsonValue v && v.TryGetValue(out bool b) && b;

    private static double Number(JsonObject o, string key, string path) => o[key] is JsonValue v && v.TryGetValue(out double d)
        ? d
        : throw new InvalidDataException($"{path}: '{key}' must be a number.");
}
