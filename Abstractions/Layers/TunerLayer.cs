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

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        if (Disabled) return BaseLayer.forward(input);
        var active = _active.Where(a => Adapters.Contains(a)).ToList();
        return active.Count == 0 ? BaseLayer.forward(input) : ForwardWithAdapters(input, active);
    }

    /// <summary>The forward pass with the given active adapters (all held by this layer, at least one).</summary>
    protected abstract Tensor ForwardWithAdapters(Tensor input, IReadOnlyList<string> activeAdapters);

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
