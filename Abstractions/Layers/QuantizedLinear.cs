using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftHost.Abstractions.Layers;

/// <summary>
/// A linear layer, y = x · Wᵀ + b, whose weight [out_features, in_features] is held only in quantized form
/// (bitsandbytes' <c>Linear4bit</c> and <c>Linear8bitLt</c>; QLoRA's frozen base). The forward pass
/// dequantizes the weight, casts the input to <see cref="ComputeDtype"/>, multiplies, and returns the result
/// in the input's dtype (the bias added in that dtype); under autograd the decoded weight is not kept for the
/// backward pass (<see cref="LinearWithoutBias"/>). Tuners wrap it as they wrap a Linear, and reach the weight through
/// <see cref="Dequantize(ScalarType)"/> (DoRA's norms, merging) and <see cref="Requantize"/> (merging into the
/// quantized base: dequantize, add the delta, requantize, as PEFT does with bitsandbytes layers).
/// </summary>
/// <remarks>
/// Implementations keep the quantized state in buffers and the bias, when there is one, as an ordinary
/// parameter, and convert only the bias when the module is converted to another dtype (<c>to(dtype)</c>):
/// the quantized weight and its float32 scales keep their types (PeftHost's <c>Linear4bit</c> and
/// <c>Linear8bit</c> do so).
/// </remarks>
public abstract class QuantizedLinear : nn.Module<Tensor, Tensor>
{
    /// <summary>A layer of the given sizes.</summary>
    /// <param name="name">The module's name.</param>
    /// <param name="inFeatures">The input size.</param>
    /// <param name="outFeatures">The output size.</param>
    protected QuantizedLinear(string name, long inFeatures, long outFeatures) : base(name)
    {
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
    }

    /// <summary>The input size.</summary>
    public long InFeatures { get; }

    /// <summary>The output size.</summary>
    public long OutFeatures { get; }

    /// <summary>The bias [out_features] in full precision, or null.</summary>
    public abstract Parameter? Bias { get; }

    /// <summary>The dtype the weight is dequantized to and the product computed in (bitsandbytes' <c>compute_dtype</c>).</summary>
    public abstract ScalarType ComputeDtype { get; }

    /// <summary>How the weight is quantized.</summary>
    public abstract WeightQuantization Quantization { get; }

    /// <summary>The device the quantized weight is on (where <see cref="Dequantize()"/> returns it).</summary>
    public abstract Device WeightDevice { get; }

    /// <summary>The bytes the quantized weight and its scales take (the bias not included).</summary>
    public abstract long QuantizedBytes { get; }

    /// <summary>The weight [out_features, in_features] dequantized, in <see cref="ComputeDtype"/>, a new tensor without gradient.</summary>
    public abstract Tensor Dequantize();

    /// <summary>
    /// Replaces the stored weight by <paramref name="weight"/> [out_features, in_features] (any float dtype),
    /// quantized with this layer's settings. The previous quantized weight is released.
    /// </summary>
    /// <exception cref="ArgumentException">The shape is not [out_features, in_features], or a value cannot be quantized (not finite).</exception>
    public abstract void Requantize(Tensor weight);

    /// <summary>
    /// The weight [out_features, in_features] decoded to <paramref name="dtype"/>, a new tensor without gradient:
    /// the values bitsandbytes' dequantize gives (4-bit: the weight's dtype when it was quantized), converted.
    /// Merging and full-precision exports read the weight this way, whatever the compute dtype. Default:
    /// <see cref="Dequantize()"/> converted to <paramref name="dtype"/>.
    /// </summary>
    /// <param name="dtype">The dtype of the result.</param>
    public virtual Tensor Dequantize(ScalarType dtype)
    {
        Tensor weight = Dequantize();
        if (weight.dtype == dtype) return weight;
        using (weight) return weight.to(dtype);
    }

    /// <summary>
    /// x · Wᵀ without the bias: the input cast to <see cref="ComputeDtype"/>, the weight decoded, the product
    /// returned in the input's dtype. When autograd records the input's history, the decoded weight is not
    /// kept for the backward pass but decoded again there (bitsandbytes does the same), so a training forward
    /// holds no full-precision copy of the weight.
    /// </summary>
    /// <param name="input">[..., in_features].</param>
    public Tensor LinearWithoutBias(Tensor input) => Linear(input, withBias: false);

    /// <inheritdoc />
    public override Tensor forward(Tensor input) => Linear(input, withBias: true);

    // The product (and the bias, in the compute dtype as bitsandbytes adds it), cast back to the input's dtype.
    private Tensor Linear(Tensor input, bool withBias)
    {
        ArgumentNullException.ThrowIfNull(input);
        using var scope = NewDisposeScope();
        ScalarType inputType = input.dtype;
        ScalarType compute = ComputeDtype;
        Tensor x = inputType == compute ? input : input.to(compute);
        Tensor y;
        if (is_grad_enabled() && x.requires_grad)
        {
            y = DequantizingMatmul.apply(x, this);
        }
        else
        {
            using Tensor weight = Dequantize();
            y = nn.functional.linear(x, weight);
        }
        if (withBias && Bias is { } bias) y = y.add_(bias.dtype == compute ? bias : bias.to(compute));
        return scope.MoveToOuter(y.dtype == inputType ? y : y.to(inputType));
    }

    /// <summary>A description such as <c>Linear4bit(in_features=4096, out_features=4096, nf4, compute float32)</c>.</summary>
    public override string ToString() => $"{GetType().Name}(in_features={InFeatures}, out_features={OutFeatures}, {Quantization}, compute {ComputeDtype})";
}
