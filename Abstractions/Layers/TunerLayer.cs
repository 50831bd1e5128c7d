using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Abstractions.Layers;

/// <summary>
/// The base of an injected layer (PEFT's <c>BaseTunerLayer</c>): wraps the original module as
/// <c>base_layer</c>, which it never changes, and owns only the adapters' parameters, registered
/// under PEFT's names with the adapter name inside (e.g. <c>lora_A.default.weight</c>).
/// </summary>
public abstract class TunerLayer : nn.Module<Tensor, Tensor>
{
    /// <summary>The registered name of the wrapped module, as in PEFT.</summary>
    public const string BaseLayerName = "base_layer";

    private IReadOnlyList<string> _active = [];

    /// <summary>Wraps <paramref name="baseLayer"/>.</summary>
    protected TunerLayer(string name, nn.Module<Tensor, Tensor> baseLayer) : base(name)
    {
        BaseLayer = baseLayer;
        register_module(BaseLayerName, baseLayer);
    }

    /// <summary>The wrapped original module.</summary>
    public nn.Module<Tensor, Tensor> BaseLayer { get; }

    /// <summary>The adapters this layer holds.</summary>
    public abstract IReadOnlyCollection<string> Adapters { get; }

    /// <summary>The adapters the forward pass uses (those this layer does not hold are ignored).</summary>
    public IReadOnlyList<string> ActiveAdapters
    {
        get => _active;
        set => _active = [.. value];
    }

    /// <summary>When true, the forward pass is exactly the base layer's.</summary>
    public bool Disabled { get; set; }

    /// <summary>Removes one adapter's parameters.</summary>
    public abstract void DeleteAdapter(string adapter);

    private readonly List<string> _merged = [];

    /// <summary>The adapters merged into the base layer's weights, in merge order.</summary>
    public IReadOnlyList<string> MergedAdapters => _merged;

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        // Merged adapters are in the base weights already; disabling needs them out first (PEFT unmerges too).
        if (Disabled) return BaseLayer.forward(input);
        if (AdapterRouting.Current is { } rows) return ForwardMixedBatch(input, rows);
        // The hot path: usually every active adapter is held and unmerged, and no list is built.
        IReadOnlyList<string> active = _active;
        foreach (string a in _active)
        {
            if (Adapters.Contains(a) && !_merged.Contains(a)) continue;
            active = _active.Where(x => Adapters.Contains(x) && !_merged.Contains(x)).ToList();
            break;
        }
        return active.Count == 0 ? BaseLayer.forward(input) : ForwardWithAdapters(input, active);
    }

    /// <summary>The forward pass with the given active adapters (all held by this layer, unmerged, at least one).</summary>
    protected abstract Tensor ForwardWithAdapters(Tensor input, IReadOnlyList<string> activeAdapters);

    /// <summary>
    /// Mixed-batch forward (PEFT's <c>adapter_names</c>): row i uses adapter <paramref name="rowAdapters"/>[i]
    /// (<see cref="AdapterRouting.BaseModel"/>, or an adapter this layer does not hold: the base layer).
    /// The default groups rows by adapter and runs each group once.
    /// </summary>
    protected virtual Tensor ForwardMixedBatch(Tensor input, IReadOnlyList<string> rowAdapters)
    {
        if (rowAdapters.Count != input.shape[0])
            throw new ArgumentException($"adapter_names has {rowAdapters.Count} entries for a batch of {input.shape[0]} rows.");
        if (_merged.Count > 0)
            throw new InvalidOperationException($"Mixed-batch inference needs unmerged adapters; merged: {string.Join(", ", _merged)}. Unmerge first.");
        using var scope = NewDisposeScope();
        Tensor? output = null;
        foreach (var group in rowAdapters.Select((name, row) => (name, row)).GroupBy(g => g.name))
        {
            using Tensor index = tensor(group.Select(g => (long)g.row).ToArray(), device: input.device);
            Tensor rows = input.index_select(0, index);
            Tensor y = Adapters.Contains(group.Key) ? ForwardWithAdapters(rows, [group.Key]) : BaseLayer.forward(rows);
            output ??= zeros([input.shape[0], .. y.shape[1..]], dtype: y.dtype, device: y.device);
            output.index_copy_(0, index, y);
        }
        return scope.MoveToOuter(output!);
    }

    /// <summary>Whether this layer can merge adapters into the base weights.</summary>
    public virtual bool CanMerge => false;

    /// <summary>
    /// Adds the adapter to the base layer's weights (in place). With <paramref name="safeMerge"/>, the
    /// merged weights are computed aside and checked for NaN/Inf before anything is changed.
    /// </summary>
    public void Merge(string adapter, bool safeMerge)
    {
        if (!Adapters.Contains(adapter)) return;
        if (_merged.Contains(adapter)) throw new InvalidOperationException($"Adapter '{adapter}' is already merged.");
        if (!CanMerge) throw new NotSupportedException($"{GetType().Name} cannot merge adapters into its base layer.");
        using (no_grad()) MergeInto(adapter, safeMerge);
        _merged.Add(adapter);
    }

    /// <summary>Takes every merged adapter out of the base weights, newest first.</summary>
    public void Unmerge()
    {
        using (no_grad())
        {
            for (int i = _merged.Count - 1; i >= 0; i--) UnmergeFrom(_merged[i]);
        }
        _merged.Clear();
    }

    /// <summary>Takes the most recently merged adapter out again (undoing a merge that failed elsewhere).</summary>
    /// <exception cref="InvalidOperationException"><paramref name="adapter"/> is not the last one merged.</exception>
    public void UnmergeLatest(string adapter)
    {
        if (_merged.Count == 0 || _merged[^1] != adapter)
            throw new InvalidOperationException($"Adapter '{adapter}' is not the last adapter merged into this layer.");
        using (no_grad()) UnmergeFrom(adapter);
        _merged.RemoveAt(_merged.Count - 1);
    }

    /// <summary>Merges one adapter into the base weights (no grad; called once per adapter).</summary>
    protected virtual void MergeInto(string adapter, bool safeMerge) => throw new NotSupportedException($"{GetType().Name} cannot merge.");

    /// <summary>Undoes <see cref="MergeInto"/> for one adapter.</summary>
    protected virtual void UnmergeFrom(string adapter) => throw new NotSupportedException($"{GetType().Name} cannot unmerge.");

    /// <summary>Throws <see cref="InvalidDataException"/> when a tensor holds NaN or Inf (safe merge), naming the adapter.</summary>
    protected static void EnsureFinite(Tensor merged, string adapter)
    {
        if (!torch.isfinite(merged).all().item<bool>())
            throw new InvalidDataException($"NaNs or Infs detected in the merged weights: adapter '{adapter}' seems to be broken; nothing was merged.");
    }

    /// <summary>
    /// One adapter's parameters and buffers by PEFT's key names relative to this layer, the adapter
    /// name removed: <c>lora_A.default.weight</c> is listed as <c>lora_A.weight</c>.
    /// </summary>
    public IEnumerable<(string Key, Tensor Value)> AdapterTensors(string adapter)
    {
        foreach ((string name, Tensor value) in named_parameters().Select(p => (p.name, (Tensor)p.parameter)).Concat(named_buffers()))
        {
            if (name.StartsWith(BaseLayerName + ".", StringComparison.Ordinal)) continue;
            string[] parts = name.Split('.');
            int at = Array.IndexOf(parts, adapter);
            if (at < 0) continue;
            yield return (string.Join('.', parts.Where((_, i) => i != at)), value);
        }
    }

    /// <summary>
    /// Disposes only what this layer created: the base layer is unregistered first, because
    /// disposing a module disposes its registered children and the base weights are not ours.
    /// </summary>
    protected override void Dispose(bool disposing)
    {
        if (disposing) _internal_submodules.Remove(BaseLayerName);
        base.Dispose(disposing);
    }
}
