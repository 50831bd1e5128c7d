using PeftHost.Engine.Export;
using PeftHost.Engine.Peft;
using PeftHost.Formats.Gguf;

namespace PeftHost.Engine.Inference.Backends;

/// <summary>
/// The files a GGUF backend (llama, vulkan) runs: a base GGUF and one GGUF-LoRA file per adapter it
/// applies unmerged, exported into the <see cref="GgufCache"/> on first use. Which way an adapter goes
/// is its method's answer, asked on the adapter loaded into the base: one its method writes as low-rank
/// pairs (<see cref="PeftModel.ExportLowRank"/>: LoRA, AdaLoRA) stays unmerged as GGUF-LoRA; otherwise
/// one its method can merge (DoRA, IA3, modules_to_save, ...) is merged into the base, which is then
/// exported with it; one that can be neither (prompt learning) is refused up front with both reasons.
/// Nothing is dropped. The answer is cached with the files (a <c>.refused</c> note for a merged one), so
/// a second run loads no model. For the llama backend the cache holds Q, K and V as one fused
/// <c>attn_qkv</c> weight (and each adapter's pairs fused to match: one matmul instead of three per
/// layer, about a third faster on a small model); a <c>--gguf</c> file given keeps its own layout, and
/// the Vulkan backend reads the separate layout <c>pefthost export</c> writes. Beside a block-quantized base on the
/// llama backend (q8_0, q4_0) the adapters' factors are q8_0, each pair's rank zero-padded to whole blocks where that
/// makes the pair smaller (r 16 on q, k, v, o of a 160M model: 2.2 MB read per token instead of 5.8; the base's own
/// quantization error dwarfs q8_0's); beside f32 and f16 bases, and on the Vulkan backend, they stay f32.
/// </summary>
/// <param name="BaseGguf">The base model (with the merged adapters).</param>
/// <param name="Unmerged">The adapters applied unmerged and their GGUF-LoRA files.</param>
/// <param name="Merged">The adapters merged into <paramref name="BaseGguf"/> and why.</param>
/// <param name="Qkv">How <paramref name="BaseGguf"/> lays out Q, K and V, which every GGUF-LoRA file applied to it must follow.</param>
/// <param name="LoraFactors">The type of the GGUF-LoRA files' factors (f32, or q8_0 with ranks padded to whole blocks).</param>
public sealed record GgufArtifacts(string BaseGguf, IReadOnlyList<(AdapterSpec Adapter, string LoraGguf)> Unmerged, IReadOnlyList<MergedAdapter> Merged,
    GgufQkvLayout Qkv, GgmlType LoraFactors)
{
    /// <summary>Exports (or finds in the cache) what <paramref name="options"/> asks for.</summary>
    /// <exception cref="NotSupportedException">An adapter can be neither applied unmerged nor merged, or a merged one has a scale other than 1.</exception>
    public static GgufArtifacts Prepare(InferenceBackendOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        string backend = options.Kind.Name();
        var cache = new GgufCache(options.CacheDirectory);
        (GgufQkvLayout qkv, GgmlType factors) = LayoutFor(options);
        (List<(AdapterSpec, string)> unmerged, List<(AdapterSpec Spec, string Reason)> merged) = Decide(options, cache, backend, qkv, factors);
        foreach ((AdapterSpec a, _) in merged)
        {
            if (a.Scale != 1.0)
                throw new NotSupportedException($"adapter '{a.Name}' is merged into the base on the {backend} backend, so it runs at scale 1 only (--adapter-scale {a.Name}={a.Scale} needs an adapter applied unmerged, or --backend torch).");
        }
        string baseGguf;
        if (options.GgufFile is string given)
        {
            if (merged.Count > 0)
                throw new NotSupportedException($"--gguf {given}: adapter '{merged[0].Spec.Name}' must be merged into the base on the {backend} backend ({merged[0].Reason}), which needs the base exported from --model: leave out --gguf.");
            baseGguf = Path.GetFullPath(given);
        }
        else
        {
            IEnumerable<string> sources = GgufCache.ModelSources(options.ModelFolder).Concat(merged.SelectMany(m => GgufCache.AdapterSources(m.Spec.Folder)));
            string parameters = $"{GgmlTypeTraits.Name(options.Quant)};merged={string.Join(",", merged.Select(m => m.Spec.Name))}{KeySuffix(qkv)}";
            (baseGguf, _) = cache.GetOrCreate("model", sources, parameters, s =>
            {
                GgufWriter writer;
                try
                {
                    writer = LlamaGgufExporter.Build(options.ModelFolder, [.. merged.Select(m => m.Spec)], options.PluginsFolder, options.Quant, out _, qkv: qkv);
                }
                catch (NotSupportedException e) when (merged.Count > 0)
                {
                    throw new NotSupportedException(
                        $"the {backend} backend cannot run {string.Join(", ", merged.Select(m => $"adapter '{m.Spec.Name}'"))}: it can neither be applied unmerged ({merged[0].Reason}) " +
                        $"nor merged into the base ({e.Message}). Use --backend torch.", e);
                }
                writer.Write(s);
            });
        }
        return new GgufArtifacts(baseGguf, unmerged, [.. merged.Select(m => new MergedAdapter(m.Spec.Name, m.Reason))], qkv, factors);
    }

    /// <summary>
    /// The GGUF-LoRA file of the adapter in <paramref name="adapterFolder"/> laid out for this base (an adapter loaded
    /// at run time), exported into the cache of <paramref name="options"/> on first use.
    /// </summary>
    /// <exception cref="NotSupportedException">The adapter cannot be written as GGUF-LoRA; the message says why.</exception>
    public string LoraFor(InferenceBackendOptions options, string adapterFolder)
    {
        ArgumentNullException.ThrowIfNull(options);
        var cache = new GgufCache(options.CacheDirectory);
        (string path, _) = cache.GetOrCreate("lora", LoraKey(options, adapterFolder, Qkv, LoraFactors),
            s => GgufLoraExporter.Build(options.ModelFolder, adapterFolder, options.PluginsFolder, LoraFactors, out _, Qkv, Padded(LoraFactors)).Write(s));
        return path;
    }

    // What the base's GGUF-LoRA files follow. The Q/K/V layout: a given file's own; else fused for llama.cpp (one product
    // and one LoRA pair per layer where there were three), separate for the Vulkan path, whose loader reads attn_q|k|v.
    // The factors: q8_0 beside a block-quantized base on llama.cpp (a given file's layer weights, else --quant), where
    // f32 factors read three times the bytes for no precision the base keeps; f32 otherwise (the Vulkan path applies
    // f32 factors only).
    private static (GgufQkvLayout Qkv, GgmlType Factors) LayoutFor(InferenceBackendOptions options)
    {
        bool llama = options.Kind == InferenceBackendKind.Llama;
        if (options.GgufFile is string given)
        {
            if (!File.Exists(given)) throw new FileNotFoundException($"GGUF file not found: {Path.GetFullPath(given)}", given);
            using GgufFile file = GgufFile.Open(given);
            bool fused = file.Tensors.Any(t => t.Name.EndsWith(".attn_qkv.weight", StringComparison.Ordinal));
            bool quantized = file.Tensors.Any(t => t.Name.StartsWith("blk.", StringComparison.Ordinal) && GgmlTypeTraits.BlockSize(t.Type) > 1);
            return (fused ? GgufQkvLayout.Fused : GgufQkvLayout.Separate, llama && quantized ? GgmlType.Q8_0 : GgmlType.F32);
        }
        return llama
            ? (GgufQkvLayout.Fused, GgmlTypeTraits.BlockSize(options.Quant) > 1 ? GgmlType.Q8_0 : GgmlType.F32)
            : (GgufQkvLayout.Separate, GgmlType.F32);
    }

    // Quantized factors may have their ranks padded to whole blocks, so that B (rows r long) is quantized too; the
    // exporter pads a pair only where that makes it smaller.
    private static bool Padded(GgmlType factors) => factors != GgmlType.F32;

    // Cache keys of separate-layout f32 files are those from before the fused layout and q8_0 factors existed.
    private static string KeySuffix(GgufQkvLayout qkv) => qkv == GgufQkvLayout.Fused ? ";qkv=fused" : "";

    private static string LoraKey(InferenceBackendOptions options, string adapterFolder, GgufQkvLayout qkv, GgmlType factors) =>
        GgufCache.Key("lora", [Path.Combine(options.ModelFolder, "config.json"), .. GgufCache.AdapterSources(adapterFolder)],
            GgmlTypeTraits.Name(factors) + (Padded(factors) ? ";padded" : "") + KeySuffix(qkv));

    // Each adapter: unmerged (its GGUF-LoRA file, written now or cached), merged (why), or refused. The
    // model is loaded only for adapters the cache has no answer for, and freed before the base export.
    private static (List<(AdapterSpec, string)> Unmerged, List<(AdapterSpec, string)> Merged) Decide(InferenceBackendOptions options, GgufCache cache, string backend,
        GgufQkvLayout qkv, GgmlType factors)
    {
        var unmerged = new List<(AdapterSpec, string)>();
        var merged = new List<(AdapterSpec, string)>();
        AdapterInspector? inspector = null;
        try
        {
            foreach (AdapterSpec a in options.Adapters)
            {
                string key = LoraKey(options, a.Folder, qkv, factors);
                string lora = cache.PathOf("lora", key);
                if (File.Exists(lora))
                {
                    unmerged.Add((a, lora));
                    continue;
                }
                string? reason = cache.ReadRefusal("lora", key);
                if (reason is null)
                {
                    inspector ??= AdapterInspector.Open(options.ModelFolder, options.PluginsFolder);
                    using PeftModel peft = inspector.Load(a);
                    reason = GgufLoraExporter.Refusal(peft, a.Name, inspector.Llama);
                    if (reason is null)
                    {
                        (lora, _) = cache.GetOrCreate("lora", key,
                            s => GgufLoraExporter.Build(peft, a.Name, inspector.Llama, factors, GgufLoraExporter.NameOf(a.Folder), out _, qkv, Padded(factors)).Write(s));
                        unmerged.Add((a, lora));
                        continue;
                    }
                    if (!peft.CanMerge(a.Name))
                        throw new NotSupportedException(
                            $"the {backend} backend cannot run adapter '{a.Name}': it can neither be applied unmerged ({reason}) " +
                            $"nor merged into the base (its method, plugin {peft.PluginOf(a.Name)}, cannot be merged into the base weights). Use --backend torch.");
                    cache.WriteRefusal("lora", key, reason);
                }
                merged.Add((a, reason));
            }
        }
        finally
        {
            inspector?.Dispose();
        }
        return (unmerged, merged);
    }
}
