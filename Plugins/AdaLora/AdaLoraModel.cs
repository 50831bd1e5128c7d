using System.Text.Json.Nodes;
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
/// saved adapters do, and is set from the config when the adapter is added or imported. While an adapter
/// trains (ITrainingHooksModel), its orthogonal regularisation joins the loss and PEFT's rank allocator runs
/// after every optimiser step; a saved adapter is then cut to the allocated rank pattern, which its config
/// records, as PEFT's state dict is.
/// </summary>
public sealed class AdaLoraModel(ModelSurgeon model, TunerContext context, AdaLoraTuner tuner)
    : LayerTunerModel<AdaLoraConfig, AdaLoraLinear>(model, context, tuner), ILowRankExportModel, ITrainingHooksModel
{
    // The rank allocator of each adapter trained here (kept after the run: its pattern cuts every later save).
    private readonly Dictionary<string, RankAllocator> _allocators = new(StringComparer.Ordinal);

    // Adapters that began training pruned (loaded with a rank pattern): only a checkpoint's untruncated triplets can continue them.
    private readonly HashSet<string> _prunedAtStart = new(StringComparer.Ordinal);

    private const string TripletPrefix = "triplets.";

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
        DropAllocator(adapter);
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
    /// Starts PEFT's rank allocator for the adapter (when it is trainable): total_step is the config's, else
    /// the run's <paramref name="totalSteps"/> (recorded in the saved config, as PEFT's <c>set_total_step</c> does).
    /// </summary>
    /// <exception cref="TunerConfigException">The schedule's fields leave no step to shrink the budget in, or orth_reg_weight / beta1 / beta2 are out of range.</exception>
    public void BeginTraining(string adapter, int totalSteps)
    {
        AdaLoraConfig config = GetConfig(adapter);
        DropAllocator(adapter);
        if (config.InferenceMode) return;
        int total = config.TotalStep ?? totalSteps;
        if (total <= 0) throw new TunerConfigException($"AdaLoRA adapter '{adapter}': total_step must be positive, got {total}.");
        if (config.Tinit + config.Tfinal >= total)
            throw new TunerConfigException($"AdaLoRA adapter '{adapter}': tinit ({config.Tinit}) + tfinal ({config.Tfinal}) must be less than total_step ({total}{(config.TotalStep is null ? ", the run's max_steps" : "")}), or the budget has no step to shrink in.");
        if (config.DeltaT <= 0) throw new TunerConfigException($"AdaLoRA adapter '{adapter}': deltaT must be positive, got {config.DeltaT}.");
        if (config.OrthRegWeight <= 0) throw new TunerConfigException($"AdaLoRA adapter '{adapter}': orth_reg_weight must be greater than 0, got {config.OrthRegWeight}.");
        foreach ((string name, double beta) in new[] { ("beta1", config.Beta1), ("beta2", config.Beta2) })
            if (beta <= 0 || beta >= 1) throw new TunerConfigException($"AdaLoRA adapter '{adapter}': {name} must be in (0, 1), got {beta}.");
        var modules = Modules(adapter);
        if (modules.Any(m => m.Layer.Rank(adapter) != config.InitR)) _prunedAtStart.Add(adapter);
        _allocators[adapter] = new RankAllocator(config, adapter, total, modules);
    }

    /// <summary>PEFT's orthogonal regularisation of a training adapter (null when it is in inference mode).</summary>
    public Tensor? RegularizationLoss(string adapter) => GetConfig(adapter).InferenceMode ? null : OrthogonalRegularization(adapter);

    /// <summary>PEFT's <c>update_and_allocate(step)</c> (after the optimiser step, before the gradients are zeroed).</summary>
    /// <exception cref="InvalidOperationException">The run did not begin for this adapter, or it began pruned and no checkpoint state restored its triplets.</exception>
    public void AfterOptimizerStep(string adapter, int step)
    {
        if (GetConfig(adapter).InferenceMode) return;
        if (!_allocators.TryGetValue(adapter, out RankAllocator? allocator))
            throw new InvalidOperationException($"AdaLoRA adapter '{adapter}': an optimiser step before BeginTraining.");
        if (_prunedAtStart.Contains(adapter))
            throw new InvalidOperationException($"AdaLoRA adapter '{adapter}' was loaded cut to a rank pattern (a finished allocation); its budget schedule cannot run again on it. Train a fresh AdaLoRA adapter, or resume from a checkpoint of the run.");
        allocator.UpdateAndAllocate(step);
    }

    /// <summary>
    /// The allocator's state and the untruncated triplets (a checkpoint's saved adapter is cut to the rank
    /// pattern; training continues from the whole triplets), or null when the adapter is not training.
    /// </summary>
    public TrainingState? ExportTrainingState(string adapter)
    {
        GetConfig(adapter);
        if (!_allocators.TryGetValue(adapter, out RankAllocator? allocator)) return null;
        (JsonObject json, Dictionary<string, Tensor> tensors) = allocator.Export();
        using (no_grad())
        {
            foreach ((string path, AdaLoraLinear layer) in Modules(adapter))
            {
                (Tensor a, Tensor b, Tensor e) = layer.Triplets(adapter);
                tensors[$"{TripletPrefix}{path}.lora_A"] = a.detach().cpu().clone();
                tensors[$"{TripletPrefix}{path}.lora_B"] = b.detach().cpu().clone();
                tensors[$"{TripletPrefix}{path}.lora_E"] = e.detach().cpu().clone();
            }
        }
        return new TrainingState(json, tensors);
    }

    /// <summary>Restores a checkpoint's untruncated triplets (trainable, ranknum init_r) and the allocator's state.</summary>
    /// <exception cref="InvalidDataException">The state lacks a module's triplets, or they or the scores do not fit.</exception>
    public void ImportTrainingState(string adapter, TrainingState state)
    {
        AdaLoraConfig config = GetConfig(adapter);
        if (!_allocators.ContainsKey(adapter))
            throw new InvalidDataException($"AdaLoRA adapter '{adapter}': a rank allocator's state for an adapter that is not training (inference mode, or no BeginTraining).");
        var modules = Modules(adapter);
        foreach ((string path, AdaLoraLinear layer) in modules)
        {
            Tensor Get(string part) => state.Tensors.TryGetValue($"{TripletPrefix}{path}.{part}", out Tensor? t) ? t
                : throw new InvalidDataException($"AdaLoRA adapter '{adapter}': the checkpoint's training state has no '{TripletPrefix}{path}.{part}'.");
            Tensor a = Get("lora_A"), b = Get("lora_B"), e = Get("lora_E");
            if (a.shape[0] != config.InitR)
                throw new InvalidDataException($"AdaLoRA adapter '{adapter}': the checkpoint's triplets of '{path}' have rank {a.shape[0]}, init_r is {config.InitR}.");
            try
            {
                layer.RestoreTriplets(adapter, a, b, e, config.InitR);
            }
            catch (ArgumentException ex)
            {
                throw new InvalidDataException($"AdaLoRA adapter '{adapter}', '{path}': {ex.Message}", ex);
            }
        }
        _prunedAtStart.Remove(adapter);
        var rest = state.Tensors.Where(t => !t.Key.StartsWith(TripletPrefix, StringComparison.Ordinal)).ToDictionary();
        // A fresh allocator over the restored triplets (its initial budget is init_r per module again), with the run's total_step.
        int total = _allocators[adapter].TotalStep;
        _allocators[adapter].Dispose();
        _allocators[adapter] = new RankAllocator(config, adapter, total, modules);
        _allocators[adapter].Import(state.Json, rest);
    }

    /// <summary>
    /// PEFT's <c>get_peft_model_state_dict</c> for AdaLoRA: once the allocator has a rank pattern, each module's
    /// triplets are cut to the kept ones and the pattern is recorded as <c>rank_pattern</c> (keys
    /// <c>&lt;module&gt;.lora_E</c>), so that PEFT loads the pruned adapter; total_step is recorded when the run gave it.
    /// </summary>
    protected override void OnExporting(string adapter, JsonObject config, IDictionary<string, Tensor> tensors)
    {
        if (!_allocators.TryGetValue(adapter, out RankAllocator? allocator)) return;
        config["total_step"] ??= allocator.TotalStep;
        if (allocator.RankPattern is not { } pattern) return;
        var json = new JsonObject();
        foreach ((string path, bool[] keep) in pattern.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            json[$"{path}.lora_E"] = new JsonArray([.. keep.Select(k => (JsonNode)JsonValue.Create(k))]);
            if (keep.All(k => k)) continue;
            using Tensor index = tensor(Enumerable.Range(0, keep.Length).Where(i => keep[i]).Select(i => (long)i).ToArray(), ScalarType.Int64);
            foreach ((string part, long dim) in new[] { ("lora_A", 0L), ("lora_E", 0L), ("lora_B", 1L) })
            {
                string key = $"{path}.{part}";
                Tensor full = tensors[key];
                tensors[key] = full.index_select(dim, index).contiguous();
                full.Dispose();
            }
        }
        config["rank_pattern"] = json;
    }

    /// <summary>Drops the allocators of adapters that are gone.</summary>
    protected override void OnAdaptersChanged()
    {
        foreach (string gone in _allocators.Keys.Where(a => !Adapters.Contains(a)).ToList()) DropAllocator(gone);
        _prunedAtStart.IntersectWith(Adapters);
    }

    private void DropAllocator(string adapter)
    {
        if (_allocators.Remove(adapter, out RankAllocator? allocator)) allocator.Dispose();
        _prunedAtStart.Remove(adapter);
    }

    private List<(string Path, AdaLoraLinear Layer)> Modules(string adapter) =>
        [.. Layers.Where(l => l.Value.Adapters.Contains(adapter)).OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => (l.Key, l.Value))];

    /// <summary>
    /// PEFT's orthogonal regularisation of the trainable adapter, to add to the training loss:
    /// orth_reg_weight * mean over A and B of ‖P Pᵀ − I‖_F (A Aᵀ for A, Bᵀ B for B).
    /// </summary>
    /// <exception cref="InvalidOperationException">No adapter is trainable, or orth_reg_weight is not positive.</exception>
    public Tensor OrthogonalRegularization()
    {
        string adapter = Adapters.FirstOrDefault(a => !GetConfig(a).InferenceMode)
            ?? throw new InvalidOperationException("AdaLoRA: no trainable adapter (all are in inference mode), so there is no orthogonal regularisation.");
        return OrthogonalRegularization(adapter);
    }

    private Tensor OrthogonalRegularization(string adapter)
    {
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
