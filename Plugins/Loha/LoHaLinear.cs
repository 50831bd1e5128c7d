using PeftHost.Abstractions.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftHost.Plugins.Loha;

/// <summary>
/// LoHa on a linear layer (PEFT's <c>loha.Linear</c>): four factors per adapter, registered as PEFT's
/// parameter dicts <c>hada_w1_a</c> [out, r], <c>hada_w1_b</c> [r, in], <c>hada_w2_a</c> [out, r],
/// <c>hada_w2_b</c> [r, in]. The weight change is their Hadamard product
/// ΔW = ((w1_a · w1_b) ⊙ (w2_a · w2_b)) · alpha / r and y = base(x) + x · ΔWᵀ for each active adapter;
/// merging adds ΔW to the base weight.
/// </summary>
/// <remarks>
/// In training mode, as PEFT: <c>module_dropout</c> skips an adapter for a whole forward pass with that
/// probability, and <c>rank_dropout</c> drops rows of ΔW, the kept rows rescaled by the mean of the mask
/// (not by 1 / (1 - p)). Neither acts in eval mode, nor in a merge.
/// </remarks>
public sealed class LoHaLinear : TunerLayer
{
    private readonly AdapterParameterDict hada_w1_a;
    private readonly AdapterParameterDict hada_w1_b;
    private readonly AdapterParameterDict hada_w2_a;
    private readonly AdapterParameterDict hada_w2_b;
    private readonly AdapterValueDict<double> scaling;
    private readonly AdapterValueDict<double> rank_dropout;
    private readonly AdapterValueDict<double> module_dropout;

    /// <summary>Wraps a linear layer of shape out x in.</summary>
    public LoHaLinear(Linear baseLayer) : base(nameof(LoHaLinear), baseLayer)
    {
        OutFeatures = baseLayer.weight!.shape[0];
        InFeatures = baseLayer.weight.shape[1];
        hada_w1_a = AdapterParameters("hada_w1_a");
        hada_w1_b = AdapterParameters("hada_w1_b");
        hada_w2_a = AdapterParameters("hada_w2_a");
        hada_w2_b = AdapterParameters("hada_w2_b");
        scaling = AdapterValues<double>("scaling");
        rank_dropout = AdapterValues<double>("rank_dropout");
        module_dropout = AdapterValues<double>("module_dropout");
    }

    /// <summary>The base layer's input size.</summary>
    public long InFeatures { get; }

    /// <summary>The base layer's output size.</summary>
    public long OutFeatures { get; }

    /// <summary>
    /// Adds an adapter of rank <paramref name="r"/> (PEFT's <c>update_layer</c>): <c>hada_w1_a</c>, <c>hada_w1_b</c>,
    /// <c>hada_w2_a</c> kaiming-uniform (a = √5), <c>hada_w2_b</c> zeros when <paramref name="initWeights"/> (so ΔW = 0),
    /// else kaiming-uniform too.
    /// </summary>
    public void AddAdapter(string adapter, int r, double alpha, double rankDropout, double moduleDropout, bool initWeights)
    {
        Tensor weight = ((Linear)GetBaseLayer()).weight!;
        hada_w1_a.Add(adapter, NewFactor([OutFeatures, r], weight, zero: false));
        hada_w1_b.Add(adapter, NewFactor([r, InFeatures], weight, zero: false));
        hada_w2_a.Add(adapter, NewFactor([OutFeatures, r], weight, zero: false));
        hada_w2_b.Add(adapter, NewFactor([r, InFeatures], weight, zero: initWeights));
        scaling[adapter] = alpha / r;
        rank_dropout[adapter] = rankDropout;
        module_dropout[adapter] = moduleDropout;
    }

    private static Parameter NewFactor(long[] shape, Tensor like, bool zero)
    {
        using Tensor data = empty(shape, dtype: like.dtype, device: like.device);
        using (no_grad())
        {
            if (zero) data.zero_();
            else nn.init.kaiming_uniform_(data, a: Math.Sqrt(5));
        }
        return new Parameter(data);
    }

    /// <summary>
    /// PEFT's <c>get_delta_weight</c>: ΔW [out, in] of one adapter, with rank dropout when
    /// <paramref name="dropRows"/> (training) and the adapter's <c>rank_dropout</c> is not 0.
    /// </summary>
    public Tensor DeltaWeight(string adapter, bool dropRows = false)
    {
        using var scope = NewDisposeScope();
        Tensor delta = hada_w1_a[adapter].matmul(hada_w1_b[adapter]).mul(hada_w2_a[adapter].matmul(hada_w2_b[adapter])).mul(scaling[adapter]);
        double p = rank_dropout[adapter];
        if (dropRows && p > 0)
        {
            Tensor drop = rand(delta.shape[0], device: delta.device).gt(p).to(delta.dtype);
            drop = drop.div(drop.mean());
            delta = delta.mul(drop.unsqueeze(1));
        }
        return scope.MoveToOuter(delta);
    }

    /// <inheritdoc />
    protected override Tensor ForwardWithAdapters(Tensor input, IReadOnlyList<string> activeAdapters)
    {
        using var scope = NewDisposeScope();
        Tensor result = BaseLayer.forward(input);
        foreach (string adapter in activeAdapters)
        {
            // As PEFT: in training, the adapter is applied when rand(1) > module_dropout.
            if (training && rand(1).item<float>() <= module_dropout[adapter]) continue;
            result = result.add(nn.functional.linear(input, DeltaWeight(adapter, dropRows: training).to(input.dtype)));
        }
        return scope.MoveToOuter(result.to(input.dtype));
    }

    /// <summary>PEFT's <c>LycorisLayer.merge</c>: W += ΔW.</summary>
    protected override void MergeInto(string adapter, bool safeMerge)
    {
        Parameter weight = ((Linear)GetBaseLayer()).weight!;
        using Tensor delta = DeltaWeight(adapter);
        using Tensor merged = weight.add(delta.to(weight.dtype));
        if (safeMerge) EnsureFinite(merged, adapter);
        weight.copy_(merged);
    }

    /// <summary>PEFT's <c>LycorisLayer.unmerge</c>: W -= ΔW.</summary>
    protected override void UnmergeFrom(string adapter)
    {
        Parameter weight = ((Linear)GetBaseLayer()).weight!;
        using Tensor delta = DeltaWeight(adapter);
        using (Tensor cast = delta.to(weight.dtype)) weight.sub_(cast);
    }

    /// <summary>
    /// Methods combined on one module (contract 1.2, PEFT's mixed model): around another method's layer this one
    /// adds its own delta, computed from the input and the original weight, to that layer's output.
    /// </summary>
    public override string? CannotWrapReason(TunerLayer inner) => null;
}
