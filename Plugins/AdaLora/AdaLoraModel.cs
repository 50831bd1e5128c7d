using Microsoft.Extensions.Logging;
using PeftHost.Abstractions.Config;
using PeftHost.Abstractions.Layers;
using PeftHost.Abstractions.State;
using PeftHost.Abstractions.Surgery;
using PeftHost.Abstractions.Tuning;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftHost.Plugins.AdaLora;

/// <summary>
/// AdaLoRA applied to one model (PEFT's <c>AdaLoraModel</c>). Exported state has PEFT's keys
/// (<c>&lt;module&gt;.lora_A</c>, <c>.lora_B</c>, <c>.lora_E</c>); <c>ranknum</c> is left out, as PEFT's
/// saved adapters do, and is set from the config when the adapter is added or imported.
/// </summary>
public sealed class AdaLoraModel(ModelSurgeon model, TunerContext context, AdaLoraTuner tuner)
    : LayerTunerModel<AdaLoraConfig, AdaLoraLinear>(model, context, tuner), ILowRankExportModel
{
    /// <inheritdoc />
    protected override bool Supports(nn.Module module) => module is Linear or QuantizedLinear;

    /// <inheritdoc />
    protected override AdaLoraLinear CreateLayer(string path, nn.Module<Tensor, Tensor> baseModule, AdaLoraConfig config)
    {
        if (config.FanInFanOut)
            Context.Logger.LogWarning("AdaLoRA: fan_in_fan_out is true but '{Path}' is a Linear layer; it is ignored (as PEFT sets it to false).", path);
        return baseModule is QuantizedLinear quantized ? new(quantized) : new((Linear)baseModule);
    }

    /// <inheritdoc />
    protected override void AddAdapterToLayer(AdaLoraLinear layer, string path, string adapter, AdaLoraConfig config)
    {
        // As PEFT's AdaLoraModel: one trainable adapter at most (the others in inference mode).
        if (!config.InferenceMode)
        {
            string? other = Adapters.FirstOrDefault(a => a != adapter && !GetConfig(a).InferenceMode);
            if (other is not null)
                throw new TunerConfigException($"Adapter '{adapter}': AdaLoRA supports only one trainable adapter and '{other}' is one; set inference_mode to true for all adapters but the one to train.");
        }

        // A rank mask from rank_pattern resizes the layer to the kept triplets; ranknum keeps
        // init_r then, so that the scaling is unchanged (PEFT's resize_modules_by_rank_pattern).
        bool[]? mask = config.RankMask(path, adapter);
        int r = mask?.Count(m => m) ?? config.InitR;
        double ranknumValue = r > 0 ? config.InitR : 0;
        layer.AddAdapter(adapter, r, config.Scaling(r), ranknumValue, config.LoraDropout, config.InitLoraWeights);
    }

    /// <summary>PEFT saves lora_A, lora_B and lora_E only: ranknum follows from the config (init_r, or the rank pattern's mask).</summary>
    protected override bool IsExported(string layerKey) => layerKey != AdaLoraLinear.RanknumKey;

    /// <summary>
    /// The adapter as low-rank pairs (ILowRankExportModel): per adapted module, ΔW = B (A * E) ·
    /// scaling / (ranknum + 1e-5) (PEFT's <c>SVDLinear.get_delta_weight</c>) as A' = A * E, B and that
    /// scale. Modules whose every triplet was pruned (rank 0) change nothing and are left out. AdaLoRA has
    /// no alpha / r rule, so there is no nominal alpha.
    /// </summary>
    public LowRankExport ExportLowRank(string adapter)
    {
        GetConfig(adapter);
        var modules = new List<LowRankFactors>();
        try
        {
            foreach ((string path, AdaLoraLinear layer) in Layers.OrderBy(l => l.Key, StringComparer.Ordinal))
            {
                if (!layer.Adapters.Contains(adapter) || layer.Rank(adapter) == 0) continue;
                (Tensor a, Tensor b, double scale) = layer.LowRankPair(adapter);
                modules.Add(new LowRankFactors(path, a, b, scale));
            }
            return new LowRankExport(adapter, modules);
        }
        catch
        {
            foreach (LowRankFactors m in modules) m.Dispose();
            throw;
        }
    }

    /// <summary>
    /// PEFT's orthogonal regularisation of the trainable adapter, to add to the training loss:
    /// orth_reg_weight * mean over A and B of ‖P Pᵀ − I‖_F (A Aᵀ for A, Bᵀ B for B).
    /// </summary>
    /// <exception cref="InvalidOperationException">No adapter is trainable, or orth_reg_weight is not positive.</exception>
    public Tensor OrthogonalRegularization()
    {
        string adapter = Adapters.FirstOrDefault(a => !GetConfig(a).InferenceMode)
            ?? throw new InvalidOperationException("AdaLoRA: no trainable adapter (all are in inference mode), so there is no orthogonal regularisation.");
        double weight = GetConfig(adapter).OrthRegWeight;
        if (weight <= 0) throw new InvalidOperationException($"AdaLoRA adapter '{adapter}': orth_reg_weight must be greater than 0, got {weight}.");

        using var scope = NewDisposeScope();
        Tensor? total = null;
        int count = 0;
        foreach (AdaLoraLinear layer in Layers.Values)
        {
            if (!layer.Adapters.Contains(adapter)) continue;
            (Tensor a, Tensor b, _) = layer.Triplets(adapter);
            foreach (Tensor cov in (Tensor[])[a.matmul(a.t()), b.t().matmul(b)])
            {
                Tensor eye = torch.eye(cov.shape[0], cov.shape[1], dtype: cov.dtype, device: cov.device);
                Tensor norm = linalg.norm(cov - eye, "fro");
                total = total is null ? norm : total + norm;
                count++;
            }
        }
        Tensor result = total is null ? torch.zeros([], dtype: ScalarType.Float32) : total.div(count).mul(weight);
        return scope.MoveToOuter(result);
    }
}
