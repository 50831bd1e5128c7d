using PeftHost.Abstractions.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftHost.Plugins.IA3;

/// <summary>
/// (IA)³ on a linear layer, registered as <c>ia3_l.&lt;adapter&gt;</c> (a parameter dict) as in
/// PEFT. For an attention-style module the vector, shape (out, 1), scales the output:
/// y = base(x) * l; for a feedforward module the vector, shape (1, in), scales the input:
/// y = base(x * l). Several active adapters multiply their vectors.
/// </summary>
/// <remarks>
/// On a quantized base (QLoRA; PEFT's <c>ia3.bnb.Linear4bit</c> / <c>Linear8bitLt</c>) the vectors are float32 and
/// the forward is the same. PEFT cannot merge IA3 into bitsandbytes layers; here a merge scales the dequantized
/// weight and quantizes it again, as PEFT merges LoRA into them (rounded to the quantization's grid).
/// The one container, <c>ia3_l</c>, is declared to the base class, which derives from it the adapters
/// held, deletion, trainable flags and the exported tensors; overriding <see cref="TunerLayer.MergeInto"/>
/// makes the layer mergeable.
/// </remarks>
public sealed class IA3Linear : TunerLayer
{
    private readonly AdapterParameterDict ia3_l;
    private readonly BaseLayerWeight _weight;

    /// <summary>Wraps a linear layer of shape out x in.</summary>
    public IA3Linear(Linear baseLayer, bool isFeedforward) : this((nn.Module<Tensor, Tensor>)baseLayer, isFeedforward) { }

    /// <summary>Wraps a quantized linear layer of shape out x in.</summary>
    public IA3Linear(QuantizedLinear baseLayer, bool isFeedforward) : this((nn.Module<Tensor, Tensor>)baseLayer, isFeedforward) { }

    private IA3Linear(nn.Module<Tensor, Tensor> baseLayer, bool isFeedforward) : base(nameof(IA3Linear), baseLayer)
    {
        _weight = BaseLayerWeight.Of(baseLayer);
        InFeatures = _weight.Shape[1];
        OutFeatures = _weight.Shape[0];
        IsFeedforward = isFeedforward;
        ia3_l = AdapterParameters("ia3_l");
    }

    /// <summary>The base layer's input size.</summary>
    public long InFeatures { get; }

    /// <summary>The base layer's output size.</summary>
    public long OutFeatures { get; }

    /// <summary>Whether the vectors scale the input (feedforward) rather than the output.</summary>
    public bool IsFeedforward { get; }

    /// <summary>Adds an adapter's vector: ones when <paramref name="init"/>, else standard normal (as PEFT).</summary>
    public void AddAdapter(string adapter, bool init)
    {
        long[] shape = IsFeedforward ? [1, InFeatures] : [OutFeatures, 1];
        using Tensor data = init
            ? ones(shape, dtype: _weight.DType, device: _weight.Device)
            : randn(shape, dtype: _weight.DType, device: _weight.Device);
        ia3_l.Add(adapter, new Parameter(data));
    }

    /// <summary>
    /// PEFT's IA3 <c>Linear.merge</c>: the weight [out, in] times the vector ([out, 1] scales rows,
    /// [1, in] columns); an output-scaling vector scales the bias too.
    /// </summary>
    protected override void MergeInto(string adapter, bool safeMerge)
    {
        Tensor l = ia3_l[adapter];
        using (Tensor weight = _weight.Read())
        using (Tensor scale = l.to(weight.dtype))
        using (Tensor merged = weight.mul(scale))
        {
            if (safeMerge) EnsureFinite(merged, adapter);
            _weight.Write(merged);
        }
        if (!IsFeedforward && _weight.Bias is { } bias)
            using (Tensor scale = l.reshape(bias.shape).to(bias.dtype)) bias.mul_(scale);
    }

    /// <summary>Divides the vector back out, as PEFT's <c>unmerge</c> (with its 1e-8 guard against zeros).</summary>
    protected override void UnmergeFrom(string adapter)
    {
        using Tensor l = ia3_l[adapter].add(1e-8);
        if (_weight.Parameter is { } weight)
        {
            using Tensor divisor = l.to(weight.dtype);
            weight.div_(divisor);
        }
        else
        {
            using Tensor dequantized = _weight.Read();
            using Tensor divisor = l.to(dequantized.dtype);
            using Tensor original = dequantized.div(divisor);
            _weight.Write(original);
        }
        if (!IsFeedforward && _weight.Bias is { } bias)
            using (Tensor divisor = l.reshape(bias.shape).to(bias.dtype)) bias.div_(divisor);
    }

    /// <inheritdoc />
    protected override Tensor ForwardWithAdapters(Tensor input, IReadOnlyList<string> activeAdapters)
    {
        using var scope = NewDisposeScope();
        Tensor scaling = ia3_l[activeAdapters[0]].flatten();
        for (int i = 1; i < activeAdapters.Count; i++) scaling = scaling * ia3_l[activeAdapters[i]].flatten();

        Tensor result;
        if (IsFeedforward)
        {
            Tensor scaled = input.to(scaling.dtype).mul(scaling).to(input.dtype);
            result = BaseLayer.forward(scaled);
        }
        else
        {
            Tensor output = BaseLayer.forward(input);
            result = output.mul(scaling).to(output.dtype);
        }
        return scope.MoveToOuter(result);
    }

    /// <summary>Refused around another method's layer (contract 1.2): see <see cref="CannotBeWrappedReason"/>.</summary>
    public override string? CannotWrapReason(TunerLayer inner) => ScaleReason;

    /// <summary>Refused inside another method's layer (contract 1.2): where IA3's scale sits among other methods' layers PEFT never defined.</summary>
    public override string? CannotBeWrappedReason(TunerLayer outer) => ScaleReason;

    private const string ScaleReason =
        "IA3 scales the module's input or output by a learned vector, and where such a scale sits among other methods' layers PEFT never defined (its mixed model refuses IA3)";
}
