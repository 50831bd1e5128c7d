using PeftHost.Abstractions.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftHost.Plugins.Vera;

/// <summary>
/// VeRA on a linear layer or GPT-2's Conv1D (PEFT's <c>vera.Linear</c>): per adapter two trainable vectors,
/// <c>vera_lambda_b.&lt;adapter&gt;</c> [out] and <c>vera_lambda_d.&lt;adapter&gt;</c> [r], around the adapter's
/// shared frozen projections: y = base(x) + λ_b ⊙ (B_s (λ_d ⊙ (A_s · dropout(x)))), A_s = A[:, :in], B_s = B[:out, :].
/// Several active adapters each add their term.
/// </summary>
/// <remarks>
/// The projections belong to the tuner model (<see cref="VeraModel"/>), which saves them once per adapter;
/// the layer only refers to them (<c>vera_projection</c> is a value container: nothing of it is saved here).
/// </remarks>
public sealed class VeraLinear : TunerLayer
{
    private readonly AdapterParameterDict vera_lambda_b;
    private readonly AdapterParameterDict vera_lambda_d;
    private readonly AdapterModuleDict<AdapterDropout> vera_dropout;
    private readonly AdapterValueDict<VeraProjection> vera_projection;

    /// <summary>Wraps a Linear (weight [out, in]).</summary>
    public VeraLinear(Linear baseLayer) : this(baseLayer, baseLayer.weight!.shape[1], baseLayer.weight.shape[0], fanInFanOut: false) { }

    /// <summary>Wraps a Conv1D (weight [in, out]; PEFT's <c>fan_in_fan_out</c>).</summary>
    public VeraLinear(Conv1D baseLayer) : this(baseLayer, baseLayer.InFeatures, baseLayer.OutFeatures, fanInFanOut: true) { }

    private VeraLinear(nn.Module<Tensor, Tensor> baseLayer, long inFeatures, long outFeatures, bool fanInFanOut)
        : base(nameof(VeraLinear), baseLayer)
    {
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        FanInFanOut = fanInFanOut;
        vera_lambda_b = AdapterParameters("vera_lambda_b");
        vera_lambda_d = AdapterParameters("vera_lambda_d");
        vera_dropout = AdapterModules<AdapterDropout>("vera_dropout", trainable: false);
        vera_projection = AdapterValues<VeraProjection>("vera_projection");
    }

    /// <summary>The base layer's input size.</summary>
    public long InFeatures { get; }

    /// <summary>The base layer's output size.</summary>
    public long OutFeatures { get; }

    /// <summary>Whether the base weight is stored [in, out] (Conv1D).</summary>
    public bool FanInFanOut { get; }

    // Read from the base layer each time: moving the model to another dtype or device replaces its parameters.
    private Parameter Weight => GetBaseLayer() is Linear l ? l.weight! : ((Conv1D)GetBaseLayer()).weight;

    /// <summary>The base layer's bias (what <c>bias: vera_only</c> trains), if any.</summary>
    public Parameter? Bias => GetBaseLayer() switch
    {
        Linear l => l.bias,
        Conv1D c => c.bias,
        _ => null,
    };

    /// <summary>
    /// PEFT's <c>update_layer</c>: λ_b ones [out] and λ_d standard normal [r], reset by
    /// <c>init_weights</c> to λ_b zeros (a no-op start) and λ_d = <paramref name="dInitial"/>.
    /// </summary>
    public void AddAdapter(string adapter, VeraProjection projection, int r, double dropout, bool initWeights, double dInitial)
    {
        if (projection.A.shape[1] < InFeatures || projection.B.shape[0] < OutFeatures || projection.A.shape[0] != r || projection.B.shape[1] != r)
            throw new InvalidOperationException($"VeRA adapter '{adapter}': the shared projections [{string.Join(", ", projection.A.shape)}] / [{string.Join(", ", projection.B.shape)}] do not fit a layer of {InFeatures} -> {OutFeatures} with r {r}.");
        Parameter weight = Weight;
        using (no_grad())
        {
            using Tensor b = initWeights ? zeros(OutFeatures, dtype: weight.dtype, device: weight.device) : ones(OutFeatures, dtype: weight.dtype, device: weight.device);
            using Tensor d = initWeights ? full(r, dInitial, dtype: weight.dtype, device: weight.device) : randn(r, dtype: weight.dtype, device: weight.device);
            vera_lambda_b.Add(adapter, new Parameter(b));
            vera_lambda_d.Add(adapter, new Parameter(d));
        }
        vera_dropout.Add(adapter, new AdapterDropout(dropout));
        vera_projection[adapter] = projection;
    }

    /// <summary>PEFT's <c>get_delta_weight</c>: ΔW = (λ_b[:, None] ⊙ B_s) @ (λ_d[:, None] ⊙ A_s), [out, in], transposed for Conv1D.</summary>
    public Tensor DeltaWeight(string adapter)
    {
        using var scope = NewDisposeScope();
        Parameter lb = vera_lambda_b[adapter], ld = vera_lambda_d[adapter];
        (Tensor a, Tensor b) = Slices(adapter, lb.dtype, lb.device);
        Tensor delta = (lb.unsqueeze(-1) * b).matmul(ld.unsqueeze(-1) * a);
        return scope.MoveToOuter(FanInFanOut ? delta.t().contiguous() : delta);
    }

    /// <inheritdoc />
    protected override Tensor ForwardWithAdapters(Tensor input, IReadOnlyList<string> activeAdapters)
    {
        using var scope = NewDisposeScope();
        Tensor result = BaseLayer.forward(input);
        ScalarType resultType = result.dtype;
        Tensor x = input;
        foreach (string adapter in activeAdapters)
        {
            Parameter lb = vera_lambda_b[adapter], ld = vera_lambda_d[adapter];
            (Tensor a, Tensor b) = Slices(adapter, ld.dtype, x.device);
            if (x.dtype != ld.dtype) x = x.to(ld.dtype);
            Tensor down = ld * nn.functional.linear(vera_dropout[adapter].forward(x), a);
            result = result + lb * nn.functional.linear(down, b);
        }
        return scope.MoveToOuter(result.to(resultType));
    }

    /// <summary>PEFT's <c>merge</c>: W += ΔW (with <paramref name="safeMerge"/>, computed aside and checked first).</summary>
    protected override void MergeInto(string adapter, bool safeMerge)
    {
        using Tensor delta = DeltaWeight(adapter);
        using Tensor typed = delta.to(Weight.dtype);
        if (safeMerge)
        {
            using Tensor merged = Weight.add(typed);
            EnsureFinite(merged, adapter);
            Weight.copy_(merged);
        }
        else Weight.add_(typed);
    }

    /// <summary>PEFT's <c>unmerge</c>: W -= ΔW.</summary>
    protected override void UnmergeFrom(string adapter)
    {
        using Tensor delta = DeltaWeight(adapter);
        using Tensor typed = delta.to(Weight.dtype);
        Weight.sub_(typed);
    }

    // The adapter's slices of the shared projections, in the dtype and on the device the computation runs in.
    private (Tensor A, Tensor B) Slices(string adapter, ScalarType dtype, Device device)
    {
        VeraProjection p = vera_projection[adapter];
        Tensor a = p.A.narrow(1, 0, InFeatures);
        Tensor b = p.B.narrow(0, 0, OutFeatures);
        bool moved = p.A.device_type != device.type || p.A.device_index != device.index;
        if (a.dtype != dtype || moved) a = a.to(dtype, device);
        if (b.dtype != dtype || moved) b = b.to(dtype, device);
        return (a, b);
    }

    /// <summary>
    /// Methods combined on one module (contract 1.2, PEFT's mixed model): around another method's layer this one
    /// adds its own delta, computed from the input and the original weight, to that layer's output.
    /// </summary>
    public override string? CannotWrapReason(TunerLayer inner) => null;
}
