using PeftHost.Abstractions.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftHost.Plugins.Lokr;

/// <summary>
/// LoKr on a linear layer (PEFT's <c>lokr.Linear</c>): the weight change is a Kronecker product
/// ΔW = w1 ⊗ w2 with w1 [out_l, in_m] and w2 [out_k, in_n] (out = out_l·out_k, in = in_m·in_n, from
/// <see cref="Factorization"/>), each factor either full (<c>lokr_w1</c>, <c>lokr_w2</c>) or a low-rank
/// product (<c>lokr_w1_a</c> · <c>lokr_w1_b</c>, <c>lokr_w2_a</c> · <c>lokr_w2_b</c>), as PEFT's parameter
/// dicts. y = base(x) + x · ΔWᵀ for each active adapter; merging adds ΔW to the base weight. As PEFT 0.13.2,
/// ΔW is not scaled by alpha / r.
/// </summary>
/// <remarks>
/// In training mode, as PEFT: <c>module_dropout</c> skips an adapter for a whole forward pass with that
/// probability, and <c>rank_dropout</c> drops rows of ΔW, the kept rows rescaled by the mean of the mask.
/// Neither acts in eval mode, nor in a merge.
/// </remarks>
public sealed class LoKrLinear : TunerLayer
{
    private readonly AdapterParameterDict lokr_w1;
    private readonly AdapterParameterDict lokr_w1_a;
    private readonly AdapterParameterDict lokr_w1_b;
    private readonly AdapterParameterDict lokr_w2;
    private readonly AdapterParameterDict lokr_w2_a;
    private readonly AdapterParameterDict lokr_w2_b;
    private readonly AdapterValueDict<double> rank_dropout;
    private readonly AdapterValueDict<double> module_dropout;

    /// <summary>Wraps a linear layer of shape out x in.</summary>
    public LoKrLinear(Linear baseLayer) : base(nameof(LoKrLinear), baseLayer)
    {
        OutFeatures = baseLayer.weight!.shape[0];
        InFeatures = baseLayer.weight.shape[1];
        lokr_w1 = AdapterParameters("lokr_w1");
        lokr_w1_a = AdapterParameters("lokr_w1_a");
        lokr_w1_b = AdapterParameters("lokr_w1_b");
        lokr_w2 = AdapterParameters("lokr_w2");
        lokr_w2_a = AdapterParameters("lokr_w2_a");
        lokr_w2_b = AdapterParameters("lokr_w2_b");
        rank_dropout = AdapterValues<double>("rank_dropout");
        module_dropout = AdapterValues<double>("module_dropout");
    }

    /// <summary>The base layer's input size.</summary>
    public long InFeatures { get; }

    /// <summary>The base layer's output size.</summary>
    public long OutFeatures { get; }

    /// <summary>
    /// PEFT's <c>factorization(dimension, factor)</c>: a pair (m, n), m ≤ n, m · n = <paramref name="dimension"/>.
    /// A positive <paramref name="factor"/> dividing the dimension gives (factor, dimension / factor); otherwise
    /// the divisors m of the dimension are walked upwards while m &lt; n and m does not exceed the factor
    /// (-1: the dimension itself), so -1 stops one step past the square root (32 → (4, 8), 16 → (4, 4)).
    /// </summary>
    public static (long M, long N) Factorization(long dimension, long factor)
    {
        if (factor > 0 && dimension % factor == 0) return (factor, dimension / factor);
        if (factor == -1) factor = dimension;
        long m = 1, n = dimension, length = m + n;
        while (m < n)
        {
            long next = m + 1;
            while (dimension % next != 0) next++;
            long pair = dimension / next;
            if (next + pair > length || next > factor) break;
            (m, n) = (next, pair);
        }
        return m > n ? (n, m) : (m, n);
    }

    /// <summary>
    /// Adds an adapter (PEFT's <c>update_layer</c>): the factor shapes from <see cref="Factorization"/> of out and in;
    /// w1 decomposed when <paramref name="decomposeBoth"/> and r &lt; max(out_l, in_m) / 2, w2 when r &lt; max(out_k, in_n) / 2.
    /// <paramref name="initWeights"/>: <c>lokr_w1</c> (or <c>lokr_w1_a</c>) zeros, so ΔW = 0, the rest kaiming-uniform
    /// (a = √5); else every factor kaiming-uniform.
    /// </summary>
    public void AddAdapter(string adapter, int r, double rankDropout, double moduleDropout, bool initWeights, bool decomposeBoth, int decomposeFactor)
    {
        Tensor weight = ((Linear)GetBaseLayer()).weight!;
        (long outL, long outK) = Factorization(OutFeatures, decomposeFactor);
        (long inM, long inN) = Factorization(InFeatures, decomposeFactor);
        bool fullW1 = !(decomposeBoth && r < Math.Max(outL, inM) / 2.0);
        bool fullW2 = !(r < Math.Max(outK, inN) / 2.0);
        if (fullW1)
            lokr_w1.Add(adapter, NewFactor([outL, inM], weight, zero: initWeights));
        else
        {
            lokr_w1_a.Add(adapter, NewFactor([outL, r], weight, zero: initWeights));
            lokr_w1_b.Add(adapter, NewFactor([r, inM], weight, zero: false));
        }
        if (fullW2)
            lokr_w2.Add(adapter, NewFactor([outK, inN], weight, zero: false));
        else
        {
            lokr_w2_a.Add(adapter, NewFactor([outK, r], weight, zero: false));
            lokr_w2_b.Add(adapter, NewFactor([r, inN], weight, zero: false));
        }
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
    /// PEFT's <c>get_delta_weight</c>: ΔW = w1 ⊗ w2 [out, in] of one adapter (no alpha / r, as 0.13.2), with rank
    /// dropout when <paramref name="dropRows"/> (training) and the adapter's <c>rank_dropout</c> is not 0.
    /// </summary>
    public Tensor DeltaWeight(string adapter, bool dropRows = false)
    {
        using var scope = NewDisposeScope();
        Tensor w1 = lokr_w1.Contains(adapter) ? lokr_w1[adapter] : lokr_w1_a[adapter].matmul(lokr_w1_b[adapter]);
        Tensor w2 = lokr_w2.Contains(adapter) ? lokr_w2[adapter] : lokr_w2_a[adapter].matmul(lokr_w2_b[adapter]);
        Tensor delta = w1.kron(w2.contiguous()).reshape(OutFeatures, InFeatures);
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
