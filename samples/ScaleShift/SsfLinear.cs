using PeftHost.Abstractions.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ScaleShift;

/// <summary>
/// SSF on a linear map (a Linear layer, or GPT-2's Conv1D): y = γ ⊙ base(x) + β, with γ
/// (<c>ssf_scale.&lt;adapter&gt;</c>) and β (<c>ssf_shift.&lt;adapter&gt;</c>) learned vectors of one entry
/// per output feature. Several active adapters apply in turn. It merges into a layer with a bias
/// (W' = diag(γ)·W, b' = γ ⊙ b + β); a layer without one (Llama's projections) has nowhere to put β and
/// does not merge.
/// </summary>
public sealed class SsfLinear : TunerLayer
{
    private readonly AdapterParameterDict ssf_scale;
    private readonly AdapterParameterDict ssf_shift;
    private readonly Parameter _weight;
    private readonly Parameter? _bias;
    private readonly bool _fanInFanOut;

    /// <summary>Wraps a Linear layer (weight [out, in]).</summary>
    public SsfLinear(Linear baseLayer) : this(baseLayer, baseLayer.weight!, baseLayer.bias, fanInFanOut: false) { }

    /// <summary>Wraps a Conv1D layer (weight [in, out]).</summary>
    public SsfLinear(Conv1D baseLayer) : this(baseLayer, baseLayer.weight, baseLayer.bias, fanInFanOut: true) { }

    private SsfLinear(nn.Module<Tensor, Tensor> baseLayer, Parameter weight, Parameter? bias, bool fanInFanOut) : base(nameof(SsfLinear), baseLayer)
    {
        _weight = weight;
        _bias = bias;
        _fanInFanOut = fanInFanOut;
        OutFeatures = weight.shape[fanInFanOut ? 1 : 0];
        ssf_scale = AdapterParameters("ssf_scale");
        ssf_shift = AdapterParameters("ssf_shift");
    }

    /// <summary>The base layer's output size.</summary>
    public long OutFeatures { get; }

    /// <summary>Merging needs the base layer's bias for the shift.</summary>
    public override bool CanMerge => _bias is not null;

    /// <summary>Adds an adapter: γ ~ N(1, std²), β ~ N(0, std²) (exactly 1 and 0 for std 0).</summary>
    public void AddAdapter(string adapter, double initStd)
    {
        using Tensor scale = ones([OutFeatures], dtype: _weight.dtype, device: _weight.device);
        using Tensor shift = zeros([OutFeatures], dtype: _weight.dtype, device: _weight.device);
        if (initStd > 0)
        {
            using var noGrad = no_grad();
            nn.init.normal_(scale, mean: 1, std: initStd);
            nn.init.normal_(shift, mean: 0, std: initStd);
        }
        ssf_scale.Add(adapter, new Parameter(scale));
        ssf_shift.Add(adapter, new Parameter(shift));
    }

    /// <inheritdoc />
    protected override Tensor ForwardWithAdapters(Tensor input, IReadOnlyList<string> activeAdapters)
    {
        using var scope = NewDisposeScope();
        Tensor result = BaseLayer.forward(input);
        foreach (string adapter in activeAdapters)
            result = result * ssf_scale[adapter] + ssf_shift[adapter];
        return scope.MoveToOuter(result);
    }

    /// <summary>W' = diag(γ)·W and b' = γ ⊙ b + β, so the merged layer computes γ ⊙ base(x) + β.</summary>
    protected override void MergeInto(string adapter, bool safeMerge)
    {
        Parameter bias = _bias!;
        using var scope = NewDisposeScope();
        Tensor mergedWeight = _weight.mul(PerOutputFeature(ssf_scale[adapter]));
        Tensor mergedBias = bias.mul(ssf_scale[adapter]).add(ssf_shift[adapter]);
        if (safeMerge)
        {
            EnsureFinite(mergedWeight, adapter);
            EnsureFinite(mergedBias, adapter);
        }
        _weight.copy_(mergedWeight);
        bias.copy_(mergedBias);
    }

    /// <summary>The inverse: W = W' / γ, b = (b' − β) / γ.</summary>
    protected override void UnmergeFrom(string adapter)
    {
        using var scope = NewDisposeScope();
        _weight.div_(PerOutputFeature(ssf_scale[adapter]));
        _bias!.sub_(ssf_shift[adapter]).div_(ssf_scale[adapter]);
    }

    // γ laid out to scale the weight's output dimension: rows of a Linear's [out, in], columns of a Conv1D's [in, out].
    private Tensor PerOutputFeature(Tensor scale) => _fanInFanOut ? scale.unsqueeze(0) : scale.unsqueeze(1);
}
