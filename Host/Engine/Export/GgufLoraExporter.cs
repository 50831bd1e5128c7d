using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using PeftHost.Abstractions.State;
using PeftHost.Engine.Inference;
using PeftHost.Engine.Peft;
using PeftHost.Formats;
using PeftHost.Formats.Gguf;
using PeftHost.Models.Config;
using static TorchSharp.torch;

namespace PeftHost.Engine.Export;

/// <summary>
/// An adapter as the GGUF-LoRA file llama.cpp's convert_lora_to_gguf.py writes, so llama.cpp's
/// <c>--lora</c>, LLamaSharp and Ollama's <c>ADAPTER</c> apply it unmerged: <c>general.type</c> adapter,
/// <c>adapter.type</c> lora, one <c>adapter.lora.alpha</c>, the base's <c>general.architecture</c>, and per
/// adapted weight the base GGUF tensor's name plus <c>.lora_a</c> (A, [r, in]) and <c>.lora_b</c> (B,
/// [out, r]); for <c>token_embd</c> lora_a is A transposed (llama.cpp gathers its rows).
/// </summary>
/// <remarks>
/// The host knows no method: the pairs come from the adapter's method (<see cref="PeftModel.ExportLowRank"/>),
/// which folds its own scaling rules into a scale per module; this class knows only llama.cpp's side:
/// the base's tensor names, the Q/K row permutation of the base export (applied to B's rows), and that
/// llama.cpp scales each pair by alpha / r (r read from the tensor), so each module's scale / (alpha / r)
/// is folded into lora_b. What an adapter holds besides pairs (modules_to_save, a DoRA magnitude, ...)
/// is refused with the reason.
/// </remarks>
public static class GgufLoraExporter
{
    private static readonly Regex LayerModule = new(@"^model\.layers\.(\d+)\.(self_attn\.(q|k|v|o)_proj|mlp\.(gate|up|down)_proj)$", RegexOptions.CultureInvariant);

    /// <summary>Writes <paramref name="adapterFolder"/> (an adapter of <paramref name="modelFolder"/>, its method from <paramref name="pluginsFolder"/>) to <paramref name="outPath"/>, atomically.</summary>
    /// <exception cref="NotSupportedException">The adapter cannot be written as GGUF-LoRA; the message says why.</exception>
    public static GgufLoraSummary Export(string modelFolder, string adapterFolder, string pluginsFolder, GgmlType quant, string outPath)
    {
        GgufWriter writer = Build(modelFolder, adapterFolder, pluginsFolder, quant, out GgufLoraSummary summary);
        AtomicFile.Write(outPath, writer.Write);
        return summary;
    }

    /// <summary>
    /// As <see cref="Export"/>, returning the writer (nothing written to disk), for a base whose Q, K and V are laid out as
    /// <paramref name="qkv"/> says, ranks padded to whole blocks when <paramref name="padRanks"/> is set (see the other overload).
    /// </summary>
    public static GgufWriter Build(string modelFolder, string adapterFolder, string pluginsFolder, GgmlType quant, out GgufLoraSummary summary,
        GgufQkvLayout qkv = GgufQkvLayout.Separate, bool padRanks = false)
    {
        CheckQuant(quant);
        LlamaGgufExporter.CheckSupported(ModelConfigReader.Read(modelFolder));
        if (SavedModules(adapterFolder) is string saved) throw new NotSupportedException(saved);
        var adapter = AdapterSpec.FromFolder(adapterFolder);
        using AdapterInspector inspector = AdapterInspector.Open(modelFolder, pluginsFolder);
        using PeftModel peft = inspector.Load(adapter);
        if (Refusal(peft, adapter.Name, inspector.Llama) is string refusal)
            throw new NotSupportedException($"{Path.GetFullPath(adapterFolder)}: {refusal}");
        return Build(peft, adapter.Name, inspector.Llama, quant, NameOf(adapterFolder), out summary, qkv, padRanks);
    }

    /// <summary>Why <paramref name="adapterFolder"/> cannot be written as GGUF-LoRA for <paramref name="modelFolder"/>, or null when it can.</summary>
    public static string? Refusal(string modelFolder, string adapterFolder, string pluginsFolder)
    {
        if (SavedModules(adapterFolder) is string saved) return saved;
        var adapter = AdapterSpec.FromFolder(adapterFolder);
        using AdapterInspector inspector = AdapterInspector.Open(modelFolder, pluginsFolder);
        using PeftModel peft = inspector.Load(adapter);
        return Refusal(peft, adapter.Name, inspector.Llama);
    }

    /// <summary>Why adapter <paramref name="adapter"/> of <paramref name="peft"/> cannot be written as GGUF-LoRA, or null when it can.</summary>
    public static string? Refusal(PeftModel peft, string adapter, LlamaConfig llama)
    {
        using LowRankExport? export = Pairs(peft, adapter, llama, out _, out string? refusal);
        return refusal;
    }

    /// <summary>
    /// Adapter <paramref name="adapter"/> of <paramref name="peft"/> (a model of <paramref name="llama"/>) as GGUF-LoRA named
    /// <paramref name="name"/>, for a base whose Q, K and V are laid out as <paramref name="qkv"/> says (with
    /// <see cref="GgufQkvLayout.Fused"/>, a layer's Q, K and V pairs become one <c>attn_qkv</c> pair of their summed rank).
    /// With <paramref name="padRanks"/>, a pair's rank is padded with zero rows of A and zero columns of B up to a whole
    /// number of <paramref name="quant"/>'s blocks where that makes the pair fewer bytes: B (whose rows are r long) is then
    /// quantized too rather than left in f32 (rank 16 to 32 halves a q8_0 pair; rank 4 to 32 would triple it). That is
    /// exact: the padding adds zero products, and llama.cpp's alpha / r, read from the padded tensor, is folded in like any
    /// other rank. Off by default, so that a file handed to other tools keeps the adapter's own rank.
    /// </summary>
    /// <exception cref="NotSupportedException">The adapter cannot be written as GGUF-LoRA (<see cref="Refusal(PeftModel, string, LlamaConfig)"/> says why).</exception>
    public static GgufWriter Build(PeftModel peft, string adapter, LlamaConfig llama, GgmlType quant, string name, out GgufLoraSummary summary,
        GgufQkvLayout qkv = GgufQkvLayout.Separate, bool padRanks = false)
    {
        ArgumentNullException.ThrowIfNull(peft);
        ArgumentNullException.ThrowIfNull(llama);
        CheckQuant(quant);
        using LowRankExport? export = Pairs(peft, adapter, llama, out IReadOnlyList<string> targets, out string? refusal);
        if (export is null) throw new NotSupportedException(refusal);

        // One alpha per file: the method's own, else the first pair's r x scale (then that pair needs no folding).
        double alpha = export.NominalAlpha ?? export.Modules[0].Scale * export.Modules[0].Rank;
        var writer = new GgufWriter();
        writer.SetMetadata("general.architecture", GgufValue.FromString("llama"));
        writer.SetMetadata("general.type", GgufValue.FromString("adapter"));
        writer.SetMetadata("general.name", GgufValue.FromString(name));
        writer.SetMetadata("general.file_type", GgufValue.FromUInt32(GgufQuant.FileType(quant)));
        writer.SetMetadata("general.quantization_version", GgufValue.FromUInt32(2));
        writer.SetMetadata("adapter.type", GgufValue.FromString("lora"));
        writer.SetMetadata("adapter.lora.alpha", GgufValue.FromFloat32((float)alpha));
        var ranks = new SortedSet<int>();
        // Fused layout: per layer, its Q, K and V pairs with their row offsets in attn_qkv, written after the rest.
        var fused = new SortedDictionary<int, List<QkvPart>>();
        for (int m = 0; m < export.Modules.Count; m++)
        {
            LowRankFactors pair = export.Modules[m];
            string target = targets[m];
            int r = pair.Rank;
            int outDim = (int)pair.OutFeatures, inDim = (int)pair.InFeatures;
            ranks.Add(r);
            float[] a = Floats(pair.A);
            float[] b = Floats(pair.B);
            if (target.EndsWith("attn_q.weight", StringComparison.Ordinal)) b = PermuteRows(b, outDim, r, llama.NumHeads);
            else if (target.EndsWith("attn_k.weight", StringComparison.Ordinal)) b = PermuteRows(b, outDim, r, llama.NumKeyValueHeads);
            if (qkv == GgufQkvLayout.Fused && QkvRowOffset(target, llama) is (int layer, int offset))
            {
                if (!fused.TryGetValue(layer, out List<QkvPart>? parts)) fused[layer] = parts = [];
                parts.Add(new QkvPart(offset, outDim, r, a, b, pair.Scale));
                continue;
            }
            if (target == "token_embd.weight")
            {
                // lora_a is A transposed here ([r, in] rows of r), so it keeps its rank: llama.cpp gathers its rows.
                Scale(b, pair.Scale / (alpha / r));
                Add(writer, target + ".lora_a", Transpose(a, r, inDim), inDim, r, quant);
                Add(writer, target + ".lora_b", b, outDim, r, quant);
                continue;
            }
            int padded = padRanks ? WrittenRank(r, inDim, outDim, quant) : r;
            // The method scales this module's B·A by pair.Scale; llama.cpp by alpha / r (the written r).
            Scale(b, pair.Scale / (alpha / padded));
            Array.Resize(ref a, padded * inDim);
            Add(writer, target + ".lora_a", a, padded, inDim, quant);
            Add(writer, target + ".lora_b", PadColumns(b, outDim, r, padded), outDim, padded, quant);
        }
        foreach ((int layer, List<QkvPart> parts) in fused)
        {
            // A: the parts' A stacked [R, in]; B: [q + k + v rows, R], each part's B in its rows and its rank's columns,
            // zero elsewhere (a projection the adapter leaves alone gets zero rows; padding, zero rows of A and columns
            // of B past the parts' ranks). llama.cpp scales by alpha / R.
            int used = parts.Sum(x => x.Rank), rows = (llama.NumHeads + 2 * llama.NumKeyValueHeads) * llama.HeadDim, inDim = llama.HiddenSize;
            int rank = padRanks ? WrittenRank(used, inDim, rows, quant) : used;
            var a = new float[(long)rank * inDim];
            var b = new float[(long)rows * rank];
            int column = 0;
            foreach (QkvPart part in parts)
            {
                part.A.CopyTo(a, (long)column * inDim);
                float fold = (float)(part.Scale / (alpha / rank));
                for (int i = 0; i < part.Rows; i++)
                    for (int j = 0; j < part.Rank; j++)
                        b[(long)(part.RowOffset + i) * rank + column + j] = part.B[(long)i * part.Rank + j] * fold;
                column += part.Rank;
            }
            Add(writer, $"blk.{layer}.attn_qkv.weight.lora_a", a, rank, inDim, quant);
            Add(writer, $"blk.{layer}.attn_qkv.weight.lora_b", b, rows, rank, quant);
        }
        summary = new GgufLoraSummary(name, quant, (float)alpha, export.Modules.Count, [.. ranks]);
        return writer;
    }

    private static void CheckQuant(GgmlType quant)
    {
        if (quant is not (GgmlType.F32 or GgmlType.F16 or GgmlType.Q8_0))
            throw new ArgumentException($"GGUF-LoRA export writes f32, f16 or q8_0 (not {GgmlTypeTraits.Name(quant)}): low-rank factors are too small for coarser types.");
    }

    // The method's pairs with their base tensor names, or null and why the adapter is not GGUF-LoRA.
    private static LowRankExport? Pairs(PeftModel peft, string adapter, LlamaConfig llama, out IReadOnlyList<string> targets, out string? refusal)
    {
        targets = [];
        LowRankExport export;
        try
        {
            export = peft.ExportLowRank(adapter);
        }
        catch (NotSupportedException e)
        {
            refusal = e.Message + " GGUF-LoRA holds low-rank pairs only.";
            return null;
        }
        refusal = export.Refusal ?? (export.Modules.Count == 0 ? $"adapter '{adapter}' changes no weight (its method exported no low-rank pair), and a GGUF-LoRA file needs one." : null);
        var names = new List<string>(export.Modules.Count);
        foreach (LowRankFactors pair in export.Modules)
        {
            if (refusal is not null) break;
            refusal = TargetName(adapter, pair.ModulePath, llama, out string target);
            if (refusal is not null) break;
            (long outDim, long inDim) = ExpectedShape(target, llama);
            if (pair.OutFeatures != outDim || pair.InFeatures != inDim)
                throw new InvalidDataException($"adapter '{adapter}': the plugin ({peft.PluginOf(adapter)}) exported B [{pair.OutFeatures}, {pair.Rank}] and A [{pair.Rank}, {pair.InFeatures}] for '{pair.ModulePath}'; the base's {target} needs B [{outDim}, r] and A [r, {inDim}].");
            names.Add(target);
        }
        if (refusal is not null)
        {
            export.Dispose();
            return null;
        }
        targets = names;
        return export;
    }

    // The host's own refusal, read before anything is loaded: modules_to_save copies are whole trained modules.
    private static string? SavedModules(string adapterFolder)
    {
        string path = Path.Combine(adapterFolder, AdapterFolder.ConfigFile);
        if (!File.Exists(path)) throw new FileNotFoundException($"No {AdapterFolder.ConfigFile} in {Path.GetFullPath(adapterFolder)}: not a PEFT adapter folder.", path);
        JsonObject config;
        try
        {
            config = JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new InvalidDataException($"{path}: not a JSON object.");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: invalid JSON: {e.Message}", e);
        }
        IReadOnlyList<string> saved = ModulesToSave.Names(config);
        return saved.Count == 0 ? null
            : $"{path}: modules_to_save ({string.Join(", ", saved)}) are full trained copies of base weights, which GGUF-LoRA cannot hold; merge the adapter into the base instead.";
    }

    private static string? TargetName(string adapter, string module, LlamaConfig config, out string target)
    {
        target = "";
        if (module == "model.embed_tokens")
        {
            target = "token_embd.weight";
            return null;
        }
        if (module == "lm_head")
        {
            if (config.TieWordEmbeddings)
                return $"adapter '{adapter}' adapts lm_head, which this model ties to its embeddings (the base GGUF has no output tensor for it).";
            target = "output.weight";
            return null;
        }
        Match m = LayerModule.Match(module);
        if (!m.Success)
            return $"adapter '{adapter}' adapts '{module}', which has no tensor in llama.cpp's llama graph (q/k/v/o, gate/up/down, embed_tokens and lm_head do).";
        string layer = m.Groups[1].Value;
        string name = m.Groups[3].Success
            ? m.Groups[3].Value switch { "q" => "attn_q", "k" => "attn_k", "v" => "attn_v", _ => "attn_output" }
            : "ffn_" + m.Groups[4].Value;
        target = $"blk.{layer}.{name}.weight";
        return null;
    }

    // The module as a linear map [out, in] (token_embd: [hidden, vocab]).
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

    // One of a layer's Q, K, V pairs bound for the fused attn_qkv pair: B already row-permuted, not yet scaled.
    private sealed record QkvPart(int RowOffset, int Rows, int Rank, float[] A, float[] B, double Scale);

    // For blk.N.attn_q|k|v.weight: N and the first row of that projection in attn_qkv (Q, then K, then V); null otherwise.
    private static (int Layer, int Offset)? QkvRowOffset(string target, LlamaConfig c)
    {
        string[] parts = target.Split('.');
        if (parts.Length != 4 || parts[0] != "blk") return null;
        int q = c.NumHeads * c.HeadDim, kv = c.NumKeyValueHeads * c.HeadDim;
        int? offset = parts[2] switch { "attn_q" => 0, "attn_k" => q, "attn_v" => q + kv, _ => null };
        return offset is int o ? (int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture), o) : null;
    }

    private static void Scale(float[] values, double factor)
    {
        float f = (float)factor;
        if (f == 1f) return;
        for (int i = 0; i < values.Length; i++) values[i] *= f;
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

    // The rank r padded to whole blocks of quant, where the pair (A [r, in], B [out, r]) then takes fewer bytes; else r.
    private static int WrittenRank(int r, int inDim, int outDim, GgmlType quant)
    {
        int block = GgmlTypeTraits.BlockSize(quant);
        int padded = (r + block - 1) / block * block;
        return Bytes(padded, inDim, quant) + Bytes(outDim, padded, quant) < Bytes(r, inDim, quant) + Bytes(outDim, r, quant) ? padded : r;
    }

    private static long Bytes(int rows, int cols, GgmlType quant) => GgmlTypeTraits.ByteCount(GgufQuant.ForTensor(quant, [rows, cols]), (long)rows * cols);

    // [rows, cols] row-major as [rows, padded], zero past cols.
    private static float[] PadColumns(float[] m, int rows, int cols, int padded)
    {
        if (padded == cols) return m;
        var p = new float[(long)rows * padded];
        for (int i = 0; i < rows; i++) Array.Copy(m, (long)i * cols, p, (long)i * padded, cols);
        return p;
    }

    private static float[] Floats(Tensor t)
    {
        using Tensor f = t.to(ScalarType.Float32).contiguous();
        return f.data<float>().ToArray();
    }

    private static void Add(GgufWriter writer, string name, float[] values, int rows, int cols, GgmlType quant)
    {
        GgmlType type = GgufQuant.ForTensor(quant, [rows, cols]);
        writer.AddTensor(name, [(ulong)cols, (ulong)rows], type, values);
    }

    /// <summary>general.name of an adapter folder's GGUF-LoRA: the folder's name.</summary>
    internal static string NameOf(string adapterFolder) => Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(adapterFolder)));
}
