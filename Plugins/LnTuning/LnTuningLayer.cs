using PeftHost.Abstractions.Layers;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Plugins.LnTuning;

/// <summary>
/// PEFT's <c>LNTuningLayer</c>: per adapter a trained copy of the wrapped module (<c>ln_tuning_layers.&lt;adapter&gt;</c>,
/// e.g. <c>ln_tuning_layers.default.weight</c> and <c>.bias</c> of a LayerNorm), which runs instead of it:
/// y = copy(x). One adapter at a time: two active adapters on one module are refused, as in PEFT.
/// </summary>
/// <remarks>
/// PEFT merges by swapping the copy in as the base layer. Here the copy's values are written into the base
/// module's parameters (the same numbers, exactly) and the base values are kept aside for unmerge, so the
/// adapter's own tensors stay the trained ones while merged (PEFT's swap would save the base values then).
/// </remarks>
public sealed class LnTuningLayer : TunerLayer
{
    private readonly AdapterModuleDict<nn.Module<Tensor, Tensor>> ln_tuning_layers;
    private readonly string _path;
    private readonly Dictionary<string, Tensor> _baseValues = new(StringComparer.Ordinal);

    /// <summary>Wraps the module at <paramref name="path"/>.</summary>
    public LnTuningLayer(nn.Module<Tensor, Tensor> baseLayer, string path) : base(nameof(LnTuningLayer), baseLayer)
    {
        _path = path;
        ln_tuning_layers = AdapterModules<nn.Module<Tensor, Tensor>>("ln_tuning_layers");
    }

    /// <summary>PEFT's <c>update_layer</c>: the adapter's copy of the base module (a no-op start).</summary>
    public void AddAdapter(string adapter) => ln_tuning_layers.Add(adapter, ModuleCopy.Of(BaseLayer));

    /// <inheritdoc />
    protected override Tensor ForwardWithAdapters(Tensor input, IReadOnlyList<string> activeAdapters)
    {
        if (activeAdapters.Count != 1)
            throw new NotSupportedException($"Trying to run forward with {activeAdapters.Count} active adapters ({string.Join(", ", activeAdapters)}) on '{_path}', but LN tuning does not allow inference with more than one adapter at a time.");
        return ln_tuning_layers[activeAdapters[0]].forward(input);
    }

    /// <summary>Puts the adapter's copy in place: its values into the base module's parameters (the base values kept aside).</summary>
    protected override void MergeInto(string adapter, bool safeMerge)
    {
        if (MergedAdapters.Count > 0)
            throw new NotSupportedException($"LN tuning does not allow merging more than one adapter at a time: '{MergedAdapters[0]}' is merged into '{_path}'; unmerge it before merging '{adapter}'.");
        var copy = ln_tuning_layers[adapter].named_parameters().ToDictionary(p => p.name, p => p.parameter);
        var targets = BaseLayer.named_parameters().ToList();
        if (safeMerge)
            foreach (var (name, _) in targets) EnsureFinite(copy[name], adapter);
        foreach (var (name, p) in targets)
        {
            _baseValues[name] = p.detach().clone();
            p.copy_(copy[name]);
        }
    }

    /// <summary>Puts the base values back, exactly.</summary>
    protected override void UnmergeFrom(string adapter)
    {
        foreach (var (name, p) in BaseLayer.named_parameters())
            if (_baseValues.Remove(name, out Tensor? kept))
            {
                p.copy_(kept);
                kept.Dispose();
            }
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            foreach (Tensor t in _baseValues.Values) t.Dispose();
            _baseValues.Clear();
        }
        base.Dispose(disposing);
    }

    /// <summary>Refused around another method's layer (contract 1.2): see <see cref="CannotBeWrappedReason"/>.</summary>
    public override string? CannotWrapReason(TunerLayer inner) => ReplaceReason;

    /// <summary>Refused inside another method's layer (contract 1.2): LN tuning replaces the module with a trained copy.</summary>
    public override string? CannotBeWrappedReason(TunerLayer outer) => ReplaceReason;

    private const string ReplaceReason =
        "LN tuning runs a trained copy of the whole module instead of it, so another method's layer on that module would be bypassed or would adapt a module that no longer runs";
}
