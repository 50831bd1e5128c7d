using PeftHost.Engine.Export;
using PeftHost.Formats.Gguf;

namespace PeftHost.Engine.Inference.Backends;

/// <summary>
/// The files a GGUF backend (llama, vulkan) runs: a base GGUF and one GGUF-LoRA file per adapter it
/// applies unmerged, exported into the <see cref="GgufCache"/> on first use. LoRA adapters stay
/// unmerged; an adapter GGUF-LoRA cannot express (DoRA, IA3, modules_to_save, ...) is merged into the
/// base, which is then exported with it; one that cannot be merged either (prompt learning) is refused
/// with the reason. Nothing is dropped.
/// </summary>
/// <param name="BaseGguf">The base model (with the merged adapters).</param>
/// <param name="Unmerged">The adapters applied unmerged and their GGUF-LoRA files.</param>
/// <param name="Merged">The adapters merged into <paramref name="BaseGguf"/> and why.</param>
public sealed record GgufArtifacts(string BaseGguf, IReadOnlyList<(AdapterSpec Adapter, string LoraGguf)> Unmerged, IReadOnlyList<MergedAdapter> Merged)
{
    /// <summary>Exports (or finds in the cache) what <paramref name="options"/> asks for.</summary>
    /// <exception cref="NotSupportedException">An adapter can be neither applied unmerged nor merged, or a merged one has a scale other than 1.</exception>
    public static GgufArtifacts Prepare(InferenceBackendOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        string backend = options.Kind.Name();
        var cache = new GgufCache(options.CacheDirectory);
        string config = Path.Combine(options.ModelFolder, "config.json");
        var unmerged = new List<(AdapterSpec, string)>();
        var merged = new List<(AdapterSpec Spec, string Reason)>();
        foreach (AdapterSpec a in options.Adapters)
        {
            if (GgufLoraExporter.Refusal(a.Folder) is string reason)
            {
                merged.Add((a, reason));
                continue;
            }
            (string path, _) = cache.GetOrCreate("lora", [config, .. GgufCache.AdapterSources(a.Folder)], "f32",
                s => GgufLoraExporter.Build(options.ModelFolder, a.Folder, GgmlType.F32, out _).Write(s));
            unmerged.Add((a, path));
        }
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
            if (!File.Exists(given)) throw new FileNotFoundException($"GGUF file not found: {Path.GetFullPath(given)}", given);
            baseGguf = Path.GetFullPath(given);
        }
        else
        {
            IEnumerable<string> sources = GgufCache.ModelSources(options.ModelFolder).Concat(merged.SelectMany(m => GgufCache.AdapterSources(m.Spec.Folder)));
            string parameters = $"{GgmlTypeTraits.Name(options.Quant)};merged={string.Join(",", merged.Select(m => m.Spec.Name))}";
            (baseGguf, _) = cache.GetOrCreate("model", sources, parameters, s =>
            {
                GgufWriter writer;
                try
                {
                    writer = LlamaGgufExporter.Build(options.ModelFolder, [.. merged.Select(m => m.Spec)], options.PluginsFolder, options.Quant, out _);
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
        return new GgufArtifacts(baseGguf, unmerged, [.. merged.Select(m => new MergedAdapter(m.Spec.Name, m.Reason))]);
    }
}
