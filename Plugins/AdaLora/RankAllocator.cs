using System.Text.Json.Nodes;
using static TorchSharp.torch;

namespace PeftHost.Plugins.AdaLora;

/// <summary>
/// PEFT's <c>RankAllocator</c> for one trainable adapter: the sensitivity of every entry of its triplets
/// (|p · ∇p|) smoothed by an EMA with <c>beta1</c>, its uncertainty by one with <c>beta2</c>, and the budget
/// of kept triplets shrinking cubically from the initial total rank to <c>target_r</c> per module between
/// <c>tinit</c> and <c>total_step − tfinal</c>; the triplets scoring lowest are masked (their singular
/// value set to 0) every <c>deltaT</c> steps, then for good at <c>total_step − tfinal</c>.
/// </summary>
internal sealed class RankAllocator : IDisposable
{
    private readonly AdaLoraConfig _config;
    private readonly IReadOnlyList<(string Path, AdaLoraLinear Layer)> _modules;
    private readonly string _adapter;
    // exp_avg_ipt and exp_avg_unc by "<path>.lora_A|lora_B|lora_E", as PEFT's (reset after the final allocation).
    private readonly Dictionary<string, Tensor> _expAvgIpt = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Tensor> _expAvgUnc = new(StringComparer.Ordinal);

    /// <summary>Starts the schedule for <paramref name="adapter"/> over the layers that hold it (sorted by path).</summary>
    public RankAllocator(AdaLoraConfig config, string adapter, int totalStep, IReadOnlyList<(string Path, AdaLoraLinear Layer)> modules)
    {
        _config = config;
        _adapter = adapter;
        _modules = modules;
        TotalStep = totalStep;
        InitialBudget = modules.Sum(m => m.Layer.Rank(adapter));
        TargetBudget = config.TargetR * modules.Count;
    }

    /// <summary>The run's total steps (the config's total_step, or the trainer's max_steps).</summary>
    public int TotalStep { get; }

    /// <summary>The initial total rank (PEFT's init_bgt).</summary>
    public int InitialBudget { get; }

    /// <summary>The final total rank (PEFT's target_bgt: target_r per module).</summary>
    public int TargetBudget { get; }

    /// <summary>The masks of the last allocation by module path (true: kept), or null before the first.</summary>
    public IReadOnlyDictionary<string, bool[]>? RankPattern { get; private set; }

    /// <summary>
    /// PEFT's <c>AdaLoraModel.update_and_allocate(global_step)</c>, after an optimiser step and before the
    /// gradients are zeroed: before <c>total_step − tfinal</c> the scores are updated and the budget
    /// masked when the schedule says so; at it, the final allocation (and the scores dropped); after it,
    /// the final masks applied again.
    /// </summary>
    public void UpdateAndAllocate(int step)
    {
        int final = TotalStep - _config.Tfinal;
        if (step < final)
        {
            UpdateScores();
            (int budget, bool mask) = Budget(step);
            if (mask) RankPattern = MaskToBudget(budget);
        }
        else if (step == final)
        {
            RankPattern = MaskToBudget(Budget(step).Budget);
            ResetScores();
        }
        else if (RankPattern is not null)
        {
            foreach ((string path, AdaLoraLinear layer) in _modules) layer.MaskTriplets(_adapter, RankPattern[path]);
        }
    }

    // PEFT's budget_schedule: the initial budget until tinit, the target after total_step - tfinal, a cubic
    // decrease between (masking every deltaT steps).
    private (int Budget, bool Mask) Budget(int step)
    {
        if (step <= _config.Tinit) return (InitialBudget, false);
        if (step > TotalStep - _config.Tfinal) return (TargetBudget, true);
        double mul = 1 - (step - _config.Tinit) / (double)(TotalStep - _config.Tfinal - _config.Tinit);
        int budget = (int)((InitialBudget - TargetBudget) * Math.Pow(mul, 3) + TargetBudget);
        return (budget, step % _config.DeltaT == 0);
    }

    // PEFT's update_ipt: ipt = |p * grad|; exp_avg_ipt = b1 * exp_avg_ipt + (1 - b1) * ipt;
    // exp_avg_unc = b2 * exp_avg_unc + (1 - b2) * |ipt - exp_avg_ipt|.
    private void UpdateScores()
    {
        foreach ((string key, Tensor p) in Parameters())
        {
            using var scope = NewDisposeScope();
            using Tensor? grad = p.grad;
            if (grad is null)
                throw new InvalidOperationException($"AdaLoRA adapter '{_adapter}': '{key}' has no gradient after the optimiser step, so its sensitivity is unknown (was the layer used in the forward pass?).");
            Tensor ipt = p.detach().mul(grad).abs();
            Tensor avgIpt = _expAvgIpt.TryGetValue(key, out Tensor? oldIpt) ? oldIpt : zeros_like(p);
            Tensor avgUnc = _expAvgUnc.TryGetValue(key, out Tensor? oldUnc) ? oldUnc : zeros_like(p);
            Tensor newIpt = avgIpt.mul(_config.Beta1).add(ipt.mul(1 - _config.Beta1));
            Tensor newUnc = avgUnc.mul(_config.Beta2).add(ipt.sub(newIpt).abs().mul(1 - _config.Beta2));
            _expAvgIpt[key] = newIpt.MoveToOuterDisposeScope();
            _expAvgUnc[key] = newUnc.MoveToOuterDisposeScope();
            oldIpt?.Dispose();
            oldUnc?.Dispose();
        }
    }

    // PEFT's mask_to_budget: a triplet's score is its E entry's plus the mean of its A row's and B column's
    // (each entry's exp_avg_ipt * exp_avg_unc); the (init_bgt - budget) lowest are masked (ties included).
    private Dictionary<string, bool[]> MaskToBudget(int budget)
    {
        var scores = new Dictionary<string, float[]>(StringComparer.Ordinal);
        foreach ((string path, _) in _modules)
        {
            using var scope = NewDisposeScope();
            Tensor a = Score(path + ".lora_A").mean([1], keepdim: true);
            Tensor b = Score(path + ".lora_B").mean([0], keepdim: false).view(-1, 1);
            Tensor e = Score(path + ".lora_E");
            Tensor triplet = e.view(-1).add(cat([a, b], 1).sum(1));
            scores[path] = triplet.to(ScalarType.Float32).cpu().data<float>().ToArray();
        }
        int k = InitialBudget - budget;
        var pattern = new Dictionary<string, bool[]>(StringComparer.Ordinal);
        float[] all = [.. scores.Values.SelectMany(s => s)];
        Array.Sort(all);
        // PEFT's torch.kthvalue(all, k): the k-th smallest score is the threshold; nothing is masked when k is 0.
        float threshold = k > 0 ? all[Math.Min(k, all.Length) - 1] : float.NegativeInfinity;
        foreach ((string path, AdaLoraLinear layer) in _modules)
        {
            bool[] keep = [.. scores[path].Select(s => !(s <= threshold))];
            layer.MaskTriplets(_adapter, keep);
            pattern[path] = keep;
        }
        return pattern;
    }

    private Tensor Score(string key)
    {
        if (!_expAvgIpt.TryGetValue(key, out Tensor? ipt) || !_expAvgUnc.TryGetValue(key, out Tensor? unc))
            throw new InvalidOperationException($"AdaLoRA adapter '{_adapter}': no sensitivity for '{key}' to allocate the budget with (the schedule reached an allocation before any score update: check tinit, tfinal and total_step).");
        return ipt.mul(unc);
    }

    private IEnumerable<(string Key, Tensor Value)> Parameters()
    {
        foreach ((string path, AdaLoraLinear layer) in _modules)
        {
            (Tensor a, Tensor b, Tensor e) = layer.Triplets(_adapter);
            yield return (path + ".lora_A", a);
            yield return (path + ".lora_B", b);
            yield return (path + ".lora_E", e);
        }
    }

    private void ResetScores()
    {
        foreach (Tensor t in _expAvgIpt.Values.Concat(_expAvgUnc.Values)) t.Dispose();
        _expAvgIpt.Clear();
        _expAvgUnc.Clear();
    }

    /// <summary>The allocator's state for a checkpoint: the JSON part (total_step, the rank pattern) and the scores' tensors (copies, by prefixed key).</summary>
    public (JsonObject Json, Dictionary<string, Tensor> Tensors) Export()
    {
        var json = new JsonObject { ["total_step"] = TotalStep };
        if (RankPattern is not null)
        {
            var pattern = new JsonObject();
            foreach ((string path, bool[] mask) in RankPattern.OrderBy(p => p.Key, StringComparer.Ordinal))
                pattern[path] = new JsonArray([.. mask.Select(m => (JsonNode)JsonValue.Create(m))]);
            json["rank_pattern"] = pattern;
        }
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach ((string key, Tensor t) in _expAvgIpt) tensors[ExpAvgIptPrefix + key] = t.detach().cpu().clone();
        foreach ((string key, Tensor t) in _expAvgUnc) tensors[ExpAvgUncPrefix + key] = t.detach().cpu().clone();
        return (json, tensors);
    }

    /// <summary>Restores what <see cref="Export"/> gave (on resume), checking it fits these modules.</summary>
    /// <exception cref="InvalidDataException">The state names another schedule, module or shape.</exception>
    public void Import(JsonObject json, IReadOnlyDictionary<string, Tensor> tensors)
    {
        int totalStep = json["total_step"]?.GetValue<int>() ?? -1;
        if (totalStep != TotalStep)
            throw new InvalidDataException($"AdaLoRA adapter '{_adapter}': the checkpoint's rank allocator ran with total_step {totalStep}, this run has {TotalStep}.");
        if (json["rank_pattern"] is JsonObject pattern)
        {
            var masks = new Dictionary<string, bool[]>(StringComparer.Ordinal);
            foreach ((string path, AdaLoraLinear layer) in _modules)
            {
                if (pattern[path] is not JsonArray array || array.Count != layer.Rank(_adapter))
                    throw new InvalidDataException($"AdaLoRA adapter '{_adapter}': the checkpoint's rank pattern has no mask of {layer.Rank(_adapter)} entries for '{path}'.");
                masks[path] = [.. array.Select(v => v!.GetValue<bool>())];
            }
            RankPattern = masks;
        }
        ResetScores();
        var expected = Parameters().ToDictionary(p => p.Key, p => p.Value);
        foreach ((string key, Tensor t) in tensors)
        {
            (Dictionary<string, Tensor> target, string name) = key.StartsWith(ExpAvgIptPrefix, StringComparison.Ordinal) ? (_expAvgIpt, key[ExpAvgIptPrefix.Length..])
                : key.StartsWith(ExpAvgUncPrefix, StringComparison.Ordinal) ? (_expAvgUnc, key[ExpAvgUncPrefix.Length..])
                : throw new InvalidDataException($"AdaLoRA adapter '{_adapter}': the checkpoint's rank allocator has an unknown tensor '{key}'.");
            if (!expected.TryGetValue(name, out Tensor? p) || !p.shape.SequenceEqual(t.shape))
                throw new InvalidDataException($"AdaLoRA adapter '{_adapter}': the checkpoint's tensor '{key}' [{string.Join(", ", t.shape)}] fits no triplet of this adapter.");
            target[name] = t.to(p.dtype, p.device).clone();
        }
    }

    private const string ExpAvgIptPrefix = "exp_avg_ipt.";
    private const string ExpAvgUncPrefix = "exp_avg_unc.";

    /// <summary>Disposes the scores.</summary>
    public void Dispose() => ResetScores();
}
