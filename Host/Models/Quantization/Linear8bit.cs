using PeftHost.Abstractions.Layers;
using PeftHost.Formats.BitsAndBytes;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftHost.Models.Quantization;

/// <summary>
/// bitsandbytes' <c>Linear8bitLt</c> with its <c>Int8Params</c>, weight-only: the weight in int8 rows with
/// float32 row scales <c>SCB</c> (<see cref="Int8RowCodec"/>), the only copy kept, dequantized in each forward
/// pass (<c>CB * SCB / 127</c>) and multiplied in the compute dtype. LLM.int8's int8 matmul with outlier
/// decomposition (<c>llm_int8_threshold</c>) is not applied: the input stays in full precision, so results
/// differ from bitsandbytes' 8-bit forward by its activation quantization.
/// </summary>
public sealed class Linear8bit : QuantizedLinear
{
    // The multiplier bitsandbytes' int8_vectorwise_dequant uses (1/127 as float32).
    private const float InverseOf127 = (float)7.874015718698502e-3;

    // Field names equal the registered buffer names, so TorchSharp's to(device) updates them.
    private Tensor weight;     // int8 [out, in]
    private Tensor SCB;        // float32 [out]
    private Parameter? bias;
    private readonly ScalarType _compute;

    private Linear8bit(long inFeatures, long outFeatures, ScalarType compute, Parameter? bias) : base(nameof(Linear8bit), inFeatures, outFeatures)
    {
        _compute = compute;
        weight = SCB = null!;
        this.bias = bias;
        if (bias is not null) register_parameter("bias", bias);
    }

    /// <inheritdoc />
    public override Parameter? Bias => bias;

    /// <inheritdoc />
    public override ScalarType ComputeDtype => _compute;

    /// <inheritdoc />
    public override WeightQuantization Quantization => WeightQuantization.Int8;

    /// <inheritdoc />
    public override Device WeightDevice => weight.device;

    /// <inheritdoc />
    public override long QuantizedBytes => weight.NumberOfElements + 4 * SCB.NumberOfElements;

    /// <summary>Quantizes <paramref name="weight"/> [out, in] and takes a copy of <paramref name="bias"/>, computing in <paramref name="computeDtype"/>.</summary>
    /// <exception cref="ArgumentException">The weight is not 2-D or a value is not finite in float16.</exception>
    public static Linear8bit Quantize(Tensor weight, Tensor? bias, ScalarType computeDtype)
    {
        if (weight.dim() != 2) throw new ArgumentException($"A linear weight is 2-D [out, in]; this one is [{string.Join(", ", weight.shape)}].");
        var layer = new Linear8bit(weight.shape[1], weight.shape[0], computeDtype, CopyBias(bias, computeDtype, weight.device));
        try
        {
            layer.Store(weight, weight.device);
            return layer;
        }
        catch
        {
            layer.Dispose();
            throw;
        }
    }

    /// <summary>A layer from stored parts (a checkpoint's): int8 rows [out, in] and their float32 scales [out].</summary>
    /// <exception cref="ArgumentException">The parts do not fit each other.</exception>
    public static Linear8bit FromParts(long outFeatures, long inFeatures, sbyte[] cb, float[] scb, Tensor? bias, ScalarType computeDtype, Device? device = null)
    {
        if (cb.LongLength != outFeatures * inFeatures) throw new ArgumentException($"An 8-bit weight [{outFeatures}, {inFeatures}] has {outFeatures * inFeatures} values, got {cb.Length}.");
        if (scb.Length != outFeatures) throw new ArgumentException($"SCB of a weight with {outFeatures} rows has {outFeatures} values, got {scb.Length}.");
        device ??= CPU;
        var layer = new Linear8bit(inFeatures, outFeatures, computeDtype, CopyBias(bias, computeDtype, device));
        try
        {
            layer.StoreParts(cb, scb, device);
            return layer;
        }
        catch
        {
            layer.Dispose();
            throw;
        }
    }

    /// <summary>The int8 rows (<c>CB</c>), row-major.</summary>
    public sbyte[] Rows()
    {
        using Tensor cpu = weight.cpu();
        return cpu.data<sbyte>().ToArray();
    }

    /// <summary>The float32 row scales (<c>SCB</c>).</summary>
    public float[] RowScales() => QuantDTypes.ToSingles(SCB);

    /// <inheritdoc />
    public override Tensor Dequantize() => Dequantize(_compute);

    /// <summary>The weight decoded in float32 (<c>CB * SCB / 127</c>, as bitsandbytes' int8_vectorwise_dequant), then cast to <paramref name="dtype"/>.</summary>
    public override Tensor Dequantize(ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        Tensor w = weight.to(ScalarType.Float32).mul_(SCB.unsqueeze(1)).mul_(InverseOf127);
        if (dtype != ScalarType.Float32) w = w.to(dtype);
        return scope.MoveToOuter(w);
    }

    /// <inheritdoc />
    public override void Requantize(Tensor weight)
    {
        if (weight.dim() != 2 || weight.shape[0] != OutFeatures || weight.shape[1] != InFeatures)
            throw new ArgumentException($"Linear8bit [{OutFeatures}, {InFeatures}] cannot take a weight of shape [{string.Join(", ", weight.shape)}].");
        Store(weight, WeightDevice);
    }

    /// <inheritdoc />
    public override string ToString() => $"Linear8bit(in_features={InFeatures}, out_features={OutFeatures}, bias={bias is not null}, int8 weight-only, compute {QuantDTypes.Name(_compute)})";

    /// <summary>Converts only the bias: the int8 rows and their float32 scales keep their types.</summary>
    protected override nn.Module _to(ScalarType dtype, bool non_blocking)
    {
        if (dtype is not (ScalarType.Float32 or ScalarType.Float64 or ScalarType.Float16 or ScalarType.BFloat16))
            throw new ArgumentException($"nn.Module.to only accepts floating point types, got {dtype}.");
        if (bias is not null && bias.dtype != dtype)
        {
            Parameter converted;
            using (no_grad()) converted = new Parameter(bias.to(dtype), requires_grad: bias.requires_grad);
            bias.Dispose();
            bias = converted;
            ConditionallyRegisterParameter("bias", bias);
        }
        return this;
    }

    /// <summary>Moves everything to <paramref name="device"/>; converts only the bias to <paramref name="dtype"/>.</summary>
    protected override nn.Module _to(Device device, ScalarType dtype, bool non_blocking)
    {
        _to(device.type, device.index, non_blocking);
        return _to(dtype, non_blocking);
    }

    private static Parameter? CopyBias(Tensor? bias, ScalarType dtype, Device device)
    {
        if (bias is null) return null;
        using (no_grad()) return new Parameter(bias.detach().to(dtype, device, copy: true), requires_grad: false);
    }

    private void Store(Tensor fullPrecision, Device device)
    {
        float[] values = QuantDTypes.ToSingles(fullPrecision);
        var cb = new sbyte[values.Length];
        var scb = new float[OutFeatures];
        Int8RowCodec.Quantize(values, (int)InFeatures, cb, scb);
        StoreParts(cb, scb, device);
    }

    private void StoreParts(sbyte[] cb, float[] scb, Device device)
    {
        Tensor rows = OnDevice(torch.tensor(cb, [OutFeatures, InFeatures]), device);
        Tensor scales = OnDevice(torch.tensor(scb), device);
        weight?.Dispose();
        SCB?.Dispose();
        weight = rows;
        SCB = scales;
        ConditionallyRegisterBuffer("weight", weight);
        ConditionallyRegisterBuffer("SCB", SCB);
    }

    private static Tensor OnDevice(Tensor cpu, Device device) =>
        (device.type == DeviceType.CPU ? cpu : cpu.to(device, disposeAfter: true)).DetachFromDisposeScope();
}
