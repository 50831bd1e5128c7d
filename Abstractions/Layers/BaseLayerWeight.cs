using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftHost.Abstractions.Layers;

/// <summary>
/// The weight of the module a tuner wraps, whatever holds it: the parameter of a Linear ([out, in]), an
/// Embedding ([num, dim]) or GPT-2's <see cref="Conv1D"/> ([in, out]), or the quantized weight of a
/// <see cref="QuantizedLinear"/> ([out, in]). Tuners read it (DoRA's norms, PiSSA/OLoRA, merging) and write it
/// (merging) through this one door, so a method written for full-precision layers works on QLoRA's quantized
/// base as PEFT's bitsandbytes layers do: read = dequantize, write = quantize again.
/// </summary>
/// <remarks>
/// The parameter and bias are looked up on every use, so a module whose parameters are replaced (a dtype
/// conversion of a quantized layer's bias) is always seen as it is now.
/// </remarks>
public sealed class BaseLayerWeight
{
    private BaseLayerWeight(nn.Module layer) => Layer = layer;

    /// <summary>The weight of <paramref name="layer"/>: a Linear, Embedding, Conv1D or QuantizedLinear.</summary>
    /// <exception cref="ArgumentException">The module is none of these, or has no weight.</exception>
    public static BaseLayerWeight Of(nn.Module layer)
    {
        ArgumentNullException.ThrowIfNull(layer);
        var weight = new BaseLayerWeight(layer);
        if (layer is not QuantizedLinear && weight.Parameter is null)
            throw new ArgumentException($"{layer.GetType().Name} is not a Linear, Embedding, Conv1D or QuantizedLinear with a weight.", nameof(layer));
        return weight;
    }

    /// <summary>The module the weight belongs to.</summary>
    public nn.Module Layer { get; }

    /// <summary>The quantized layer, or null for a full-precision one.</summary>
    public QuantizedLinear? Quantized => Layer as QuantizedLinear;

    /// <summary>Whether the weight is held quantized (reads dequantize it, writes quantize it again, with rounding).</summary>
    public bool IsQuantized => Layer is QuantizedLinear;

    /// <summary>The live weight parameter of a full-precision layer; null for a quantized one.</summary>
    public Parameter? Parameter => Layer switch
    {
        QuantizedLinear => null,
        Linear l => l.weight,
        Conv1D c => c.weight,
        Embedding e => e.named_parameters(recurse: false).FirstOrDefault(p => p.name == "weight").parameter,
        _ => null,
    };

    /// <summary>The layer's bias (Linear, Conv1D, QuantizedLinear), or null.</summary>
    public Parameter? Bias => Layer switch
    {
        QuantizedLinear q => q.Bias,
        Linear l => l.bias,
        Conv1D c => c.bias,
        _ => null,
    };

    /// <summary>The weight's shape as stored: [out, in] for Linear and QuantizedLinear, [in, out] for Conv1D, [num, dim] for Embedding.</summary>
    public long[] Shape => Quantized is { } q ? [q.OutFeatures, q.InFeatures] : Parameter!.shape;

    /// <summary>
    /// The dtype of <see cref="Read"/>'s tensor and of new adapter tensors: the parameter's, or float32 for a
    /// quantized layer (PEFT's adapters keep nn.Linear's float32 beside bitsandbytes' integer weights).
    /// </summary>
    public ScalarType DType => Quantized is not null ? ScalarType.Float32 : Parameter!.dtype;

    /// <summary>The device the weight is on.</summary>
    public Device Device => Quantized is { } q ? q.WeightDevice : Parameter!.device;

    /// <summary>
    /// The weight as stored, in <see cref="DType"/>, a tensor without gradient that the caller disposes: the
    /// parameter itself (detached: the same storage, not to be changed in place) or the quantized weight
    /// decoded (<see cref="QuantizedLinear.Dequantize(ScalarType)"/>, bitsandbytes' dequantize, to float32).
    /// </summary>
    public Tensor Read() => Quantized is { } q ? q.Dequantize(ScalarType.Float32) : Parameter!.detach();

    /// <summary>
    /// Replaces the weight's values by <paramref name="weight"/> (the stored shape, any float dtype): copied into
    /// the parameter, or quantized again with the layer's settings (<see cref="QuantizedLinear.Requantize"/>, as
    /// PEFT merges into bitsandbytes layers: the result is rounded to the quantization's grid).
    /// </summary>
    /// <exception cref="ArgumentException">The shape differs from <see cref="Shape"/>.</exception>
    public void Write(Tensor weight)
    {
        ArgumentNullException.ThrowIfNull(weight);
        long[] shape = Shape;
        if (!weight.shape.SequenceEqual(shape))
            throw new ArgumentException($"{Layer.GetType().Name}'s weight is [{string.Join(", ", shape)}]; cannot write a tensor of shape [{string.Join(", ", weight.shape)}].", nameof(weight));
        if (Quantized is { } q)
        {
            using (no_grad()) q.Requantize(weight);
            return;
        }
        using (no_grad()) Parameter!.copy_(weight);
    }
}
