using PeftHost.Abstractions.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftHost.Plugins.Bottleneck;

/// <summary>
/// Bottleneck adapters on a Linear or GPT-2 Conv1D module: per adapter a down projection
/// <c>bottleneck_down.&lt;adapter&gt;</c> [m, d_read], an activation and an up projection <c>bottleneck_up.&lt;adapter&gt;</c>
/// [out, m] (Linear layers, bias included), f(z) = up(act(down(dropout(z)))). With h = module(x): serial
/// y = h + s · f(h), parallel y = h + s · f(x). Several active adapters each add their term, all from the same h
/// and x. Not mergeable: the term is a nonlinear function of the activations.
/// </summary>
public sealed class BottleneckLayer : TunerLayer
{
    private readonly AdapterModuleDict<AdapterLinear> bottleneck_down;
    private readonly AdapterModuleDict<AdapterLinear> bottleneck_up;
    private readonly AdapterModuleDict<AdapterDropout> bottleneck_dropout;
    private readonly AdapterValueDict<bool> parallel;
    private readonly AdapterValueDict<double> scaling;
    private readonly AdapterValueDict<string> adapter_act;

    /// <summary>Wraps a Linear (weight [out, in]).</summary>
    public BottleneckLayer(Linear baseLayer) : this(baseLayer, baseLayer.in_features, baseLayer.out_features) { }

    /// <summary>Wraps a Conv1D (weight [in, out]); the adapter's tensors keep the Linear layout all the same.</summary>
    public BottleneckLayer(Conv1D baseLayer) : this(baseLayer, baseLayer.InFeatures, baseLayer.OutFeatures) { }

    private BottleneckLayer(nn.Module<Tensor, Tensor> baseLayer, long inFeatures, long outFeatures) : base(nameof(BottleneckLayer), baseLayer)
    {
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        bottleneck_down = AdapterModules<AdapterLinear>("bottleneck_down");
        bottleneck_up = AdapterModules<AdapterLinear>("bottleneck_up");
        bottleneck_dropout = AdapterModules<AdapterDropout>("bottleneck_dropout", trainable: false);
        parallel = AdapterValues<bool>("parallel");
        scaling = AdapterValues<double>("scaling");
        adapter_act = AdapterValues<string>("adapter_act");
    }

    /// <summary>The wrapped module's input size.</summary>
    public long InFeatures { get; }

    /// <summary>The wrapped module's output size.</summary>
    public long OutFeatures { get; }

    // Read from the base layer each time: moving the model to another dtype or device replaces its parameters.
    private Parameter Weight => GetBaseLayer() is Linear l ? l.weight! : ((Conv1D)GetBaseLayer()).weight;

    /// <summary>
    /// Adds an adapter of width <paramref name="width"/>: both projections as <c>nn.Linear</c> initialises them
    /// (Kaiming-uniform weight, uniform bias), the up projection then zeroed when <paramref name="initWeights"/>.
    /// </summary>
    public void AddAdapter(string adapter, int width, bool isParallel, string act, double dropout, double scale, bool initWeights)
    {
        Parameter weight = Weight;
        long read = isParallel ? InFeatures : OutFeatures;
        var down = new AdapterLinear(read, width, hasBias: true, device: weight.device, dtype: weight.dtype);
        var up = new AdapterLinear(width, OutFeatures, hasBias: true, device: weight.device, dtype: weight.dtype);
        if (initWeights)
            using (no_grad())
            {
                up.weight.zero_();
                up.bias!.zero_();
            }
        bottleneck_down.Add(adapter, down);
        bottleneck_up.Add(adapter, up);
        bottleneck_dropout.Add(adapter, new AdapterDropout(dropout));
        parallel[adapter] = isParallel;
        scaling[adapter] = scale;
        adapter_act[adapter] = act;
    }

    /// <inheritdoc />
    protected override Tensor ForwardWithAdapters(Tensor input, IReadOnlyList<string> activeAdapters)
    {
        using var scope = NewDisposeScope();
        Tensor h = BaseLayer.forward(input);
        Tensor y = h;
        foreach (string adapter in activeAdapters)
        {
            AdapterLinear down = bottleneck_down[adapter], up = bottleneck_up[adapter];
            Tensor z = parallel[adapter] ? input : h;
            if (z.dtype != down.weight.dtype) z = z.to(down.weight.dtype);
            Tensor a = Activate(adapter_act[adapter], down.forward(bottleneck_dropout[adapter].forward(z)));
            Tensor term = up.forward(a).mul(scaling[adapter]);
            y = y + term.to(h.dtype);
        }
        return scope.MoveToOuter(y);
    }

    private static Tensor Activate(string act, Tensor x) => act switch
    {
        "relu" => nn.functional.relu(x),
        "gelu" => nn.functional.gelu(x),
        "silu" => nn.functional.silu(x),
        "tanh" => x.tanh(),
        _ => throw new InvalidOperationException($"Unknown adapter_act '{act}' (the config allows only relu, gelu, silu, tanh)."),
    };

    /// <summary>
    /// Methods combined on one module (contract 1.2): around another method's layer, the bottleneck adapter acts on
    /// that layer's output (serial) or beside it (parallel), as on the original module's.
    /// </summary>
    public override string? CannotWrapReason(TunerLayer inner) => null;

    /// <summary>Refused inside another method's layer: its delta, once merged into the original weight, would pass through this nonlinear adapter and change the numbers.</summary>
    public override string? CannotBeWrappedReason(TunerLayer outer) =>
        "a bottleneck adapter is a nonlinear function of the module's output, so an outer method's delta merged into the original weight would pass through it and change the result; put the bottleneck adapter last (outside)";
}
