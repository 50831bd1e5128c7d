using PeftHost.Abstractions.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Hostile;

/// <summary>y = base(x) * scale of each active adapter (NaN instead when the adapter's config says forward "nan").</summary>
public sealed class HostileLayer : nn.Module<Tensor, Tensor>
{
    private readonly nn.Module<Tensor, Tensor> base_layer;
    private readonly AdapterParameterDict scale = new();
    private readonly Dictionary<string, bool> _nan = new(StringComparer.Ordinal);

    public HostileLayer(nn.Module<Tensor, Tensor> baseLayer) : base(nameof(HostileLayer))
    {
        base_layer = baseLayer;
        RegisterComponents();
    }

    public nn.Module<Tensor, Tensor> BaseLayer => base_layer;

    public IReadOnlyList<string> Active { get; set; } = [];

    public HashSet<string> Merged { get; } = new(StringComparer.Ordinal);

    public bool Enabled { get; set; } = true;

    public IReadOnlyCollection<string> Adapters => scale.Keys;

    public Parameter Scale(string adapter) => scale[adapter];

    public void Add(string adapter, double init, bool nan)
    {
        scale.Add(adapter, new Parameter(torch.full(1, init)));
        _nan[adapter] = nan;
    }

    public void Remove(string adapter)
    {
        scale.Remove(adapter);
        _nan.Remove(adapter);
    }

    // The base weights are the model's: unregistered before disposing, or disposing this layer would free them.
    protected override void Dispose(bool disposing)
    {
        if (disposing) _internal_submodules.Remove(nameof(base_layer));
        base.Dispose(disposing);
    }

    public override Tensor forward(Tensor input)
    {
        Fault.At("forward");
        Tensor y = base_layer.forward(input);
        if (!Enabled) return y;
        foreach (string a in Active)
        {
            if (Merged.Contains(a) || !scale.Contains(a)) continue;
            y = _nan[a] ? y * double.NaN : y * scale[a];
        }
        return y;
    }
}
