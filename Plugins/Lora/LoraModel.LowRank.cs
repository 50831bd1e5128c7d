using PeftHost.Abstractions.State;
using PeftHost.Plugins.Lora.Variants;
using static TorchSharp.torch;

namespace PeftHost.Plugins.Lora;

// An adapter as low-rank pairs (ILowRankExportModel), for runtimes that apply nothing else unmerged
// (llama.cpp's GGUF-LoRA, as its convert_lora_to_gguf.py writes PEFT's lora_A / lora_B).
public sealed partial class LoraModel
{
    /// <summary>
    /// Per adapted module, lora_A [r, in] and lora_B [out, r] (an embedding's lora_embedding_A / _B, which
    /// have that orientation already; a Conv1D's factors are a Linear's) with the module's own scaling:
    /// alpha / r, or alpha / √r with rsLoRA, with r and alpha from rank_pattern / alpha_pattern. The
    /// nominal alpha is lora_alpha. Refused: variants (DoRA's magnitude rescales the weight's columns),
    /// trained biases (<c>bias</c> other than none), and base weights saved with the adapter (a targeted
    /// embedding layer, which PEFT saves whole).
    /// </summary>
    public LowRankExport ExportLowRank(string adapter)
    {
        LoraConfig config = GetConfig(adapter);
        var held = Layers.Where(l => l.Value.Adapters.Contains(adapter)).OrderBy(l => l.Key, StringComparer.Ordinal).ToList();
        if (config.UseDora || held.Any(l => l.Value.Variant(adapter) is DoraVariant))
            return LowRankExport.Refused(adapter, $"adapter '{adapter}' is a DoRA adapter (use_dora): its magnitude vector rescales each weight column, which low-rank pairs (scale · B·A added to the weight) cannot express; merge it into the base instead.");
        if (held.FirstOrDefault(l => l.Value.Variant(adapter) is not null) is { Key: not null } variant)
            return LowRankExport.Refused(adapter, $"adapter '{adapter}' runs '{variant.Key}' through the LoRA variant {variant.Value.Variant(adapter)!.GetType().Name}, which low-rank pairs alone cannot express; merge it into the base instead.");
        if (config.Bias != "none")
            return LowRankExport.Refused(adapter, $"adapter '{adapter}' trains biases of the base (bias '{config.Bias}'), which have no place beside low-rank pairs; merge it into the base instead.");
        if (held.FirstOrDefault(l => ExportsBaseLayer(l.Key, config)) is { Key: not null } saved)
            return LowRankExport.Refused(adapter, $"adapter '{adapter}' carries its own copy of the base weights of '{saved.Key}' (PEFT saves a targeted embedding layer whole), which low-rank pairs cannot express; merge it into the base instead.");

        var modules = new List<LowRankFactors>(held.Count);
        try
        {
            using (no_grad())
                foreach ((string path, LoraLayer layer) in held)
                {
                    (TorchSharp.Modules.Parameter a, TorchSharp.Modules.Parameter b) = layer.Factors(adapter);
                    modules.Add(new LowRankFactors(path, Copy(a), Copy(b), layer.Scaling(adapter)));
                }
            return new LowRankExport(adapter, modules, config.LoraAlpha);
        }
        catch
        {
            foreach (LowRankFactors m in modules) m.Dispose();
            throw;
        }
    }

    // A detached CPU copy the export owns.
    private static Tensor Copy(Tensor t)
    {
        using var scope = NewDisposeScope();
        return scope.MoveToOuter(t.detach().cpu().clone());
    }
}
