using PeftHost.Abstractions.Layers;
using PeftHost.Formats.BitsAndBytes;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftHost.Models.Quantization;

/// <summary>
/// bitsandbytes' <c>Linear4bit</c> (QLoRA): the weight in 4-bit NF4 or FP4 codes, blocks of 64 values scaled by
/// their absmax (<see cref="FourBitCodec"/>), optionally with the absmax values double-quantized
/// (<see cref="NestedAbsmax"/>). The packed codes and scales are the only copy of the weight; each forward
/// pass decodes them with a few vectorised tensor operations (one byte-table lookup for two values, one
/// multiply by the block scales), then multiplies in the compute dtype.
/// </summary>
/// <remarks>
/// bitsandbytes switches a layer's compute dtype to the input's when the input is float32 or bfloat16;
/// this layer always computes in <see cref="QuantizedLinear.ComputeDtype"/> as configured.
/// </remarks>
public sealed class Linear4bit : QuantizedLinear
{
    // Field names equal the registered buffer names, so TorchSharp's to(device) updates them.
    private Tensor weight;                 // uint8 [ceil(n / 2)], high nibble first
    private Tensor absmax;                 // float32 [blocks], or uint8 codes when double-quantized
    private Tensor? nested_absmax;         // float32 [nested blocks]
    private Tensor? nested_quant_map;      // float32 [256], only when not bitsandbytes' standard map
    private Parameter? bias;
    private float _offset;
    private ScalarType _compute;

    private Linear4bit(long inFeatures, long outFeatures, FourBitType type, int blockSize, ScalarType quantDtype, ScalarType compute, Parameter? bias)
        : base(nameof(Linear4bit), inFeatures, outFeatures)
    {
        QuantType = type;
        BlockSize = blockSize;
        QuantDtype = quantDtype;
        _compute = compute;
        weight = absmax = null!;
        this.bias = bias;
        if (bias is not null) register_parameter("bias", bias);
    }

    /// <summary>NF4 or FP4.</summary>
    public FourBitType QuantType { get; }

    /// <summary>Values per absmax (64).</summary>
    public int BlockSize { get; }

    /// <summary>Whether the absmax values are double-quantized.</summary>
    public bool DoubleQuant => nested_absmax is not null;

    /// <summary>The nested block size when double-quantized (256).</summary>
    public int NestedBlockSize { get; private set; }

    /// <summary>The weight's dtype when it was quantized (the quant state's <c>dtype</c>): decoding passes through it, as bitsandbytes' does.</summary>
    public ScalarType QuantDtype { get; private set; }

    /// <inheritdoc />
    public override Parameter? Bias => bias;

    /// <inheritdoc />
    public override ScalarType ComputeDtype => _compute;

    /// <inheritdoc />
    public override WeightQuantization Quantization => QuantType == FourBitType.Nf4 ? WeightQuantization.Nf4 : WeightQuantization.Fp4;

    /// <inheritdoc />
    public override Device WeightDevice => weight.device;

    /// <inheritdoc />
    public override long QuantizedBytes =>
        weight.NumberOfElements + absmax.NumberOfElements * absmax.ElementSize
        + (nested_absmax is null ? 0 : nested_absmax.NumberOfElements * 4 + 4)
        + (nested_quant_map is null ? 0 : nested_quant_map.NumberOfElements * 4);

    /// <summary>
    /// Quantizes <paramref name="weight"/> [out, in] (its dtype becomes the quant dtype) and takes
    /// <paramref name="bias"/> (copied into a new parameter, in the weight's dtype).
    /// </summary>
    /// <exception cref="ArgumentException">The weight is not 2-D or holds a non-finite value.</exception>
    public static Linear4bit Quantize(Tensor weight, Tensor? bias, FourBitType type, bool doubleQuant, ScalarType computeDtype, int blockSize = FourBitCodec.DefaultBlockSize)
    {
        if (weight.dim() != 2) throw new ArgumentException($"A linear weight is 2-D [out, in]; this one is [{string.Join(", ", weight.shape)}].");
        var layer = new Linear4bit(weight.shape[1], weight.shape[0], type, blockSize, weight.dtype, computeDtype, CopyBias(bias, weight.dtype, weight.device));
        try
        {
            layer.Store(weight, doubleQuant, weight.device);
            return layer;
        }
        catch
        {
            layer.Dispose();
            throw;
        }
    }

    /// <summary>
    /// A layer from stored parts (a checkpoint's): packed codes, the absmax values (float32, or
    /// <paramref name="nested"/> when double-quantized) and the quant state. The parts must fit each other.
    /// </summary>
    /// <exception cref="ArgumentException">The parts do not fit the quant state's shape and block size.</exception>
    public static Linear4bit FromParts(FourBitQuantState state, byte[] packed, float[]? absmax, NestedAbsmax? nested, Tensor? bias, ScalarType computeDtype, Device? device = null)
    {
        if (state.Shape.Count != 2) throw new ArgumentException($"A Linear4bit weight is 2-D; the quant state's shape is [{string.Join(", ", state.Shape)}].");
        long n = state.ElementCount;
        int blocks = FourBitCodec.BlockCount(n, state.BlockSize);
        if (packed.LongLength != FourBitCodec.PackedLength(n))
            throw new ArgumentException($"{n} values pack into {FourBitCodec.PackedLength(n)} bytes, got {packed.Length}.");
        if ((absmax is null) == (nested is null)) throw new ArgumentException("Give either float32 absmax values or double-quantized ones.");
        if ((absmax?.Length ?? nested!.Codes.Length) != blocks)
            throw new ArgumentException($"{n} values in blocks of {state.BlockSize} have {blocks} absmax values, got {absmax?.Length ?? nested!.Codes.Length}.");
        device ??= CPU;
        ScalarType quantDtype = QuantDTypes.Parse(state.DType);
        var layer = new Linear4bit(state.Shape[1], state.Shape[0], state.QuantType, state.BlockSize, quantDtype, computeDtype, CopyBias(bias, bias?.dtype ?? quantDtype, device));
        try
        {
            layer.StoreParts(packed, absmax, nested, device);
            return layer;
        }
        catch
        {
            layer.Dispose();
            throw;
        }
    }

    /// <summary>The bitsandbytes quant state of the stored weight (what the checkpoint's JSON holds).</summary>
    public FourBitQuantState QuantState => new()
    {
        QuantType = QuantType, BlockSize = BlockSize, DType = QuantDTypes.Name(QuantDtype), Shape = [OutFeatures, InFeatures],
        NestedBlockSize = DoubleQuant ? NestedBlockSize : null, NestedDType = DoubleQuant ? "float32" : null,
        NestedOffset = DoubleQuant ? _offset : null,
    };

    /// <summary>The packed codes, [ceil(n / 2)] bytes.</summary>
    public byte[] PackedCodes()
    {
        using Tensor cpu = weight.cpu();
        return cpu.data<byte>().ToArray();
    }

    /// <summary>The float32 absmax values (null when double-quantized: see <see cref="NestedState"/>).</summary>
    public float[]? AbsmaxValues() => DoubleQuant ? null : QuantDTypes.ToSingles(absmax);

    /// <summary>The double-quantization state (null without double quantization).</summary>
    public NestedAbsmax? NestedState()
    {
        if (!DoubleQuant) return null;
        using Tensor codes = absmax.cpu();
        float[] map = nested_quant_map is null ? Formats.BitsAndBytes.DynamicMap.Signed.ToArray() : QuantDTypes.ToSingles(nested_quant_map);
        return new NestedAbsmax(codes.data<byte>().ToArray(), QuantDTypes.ToSingles(nested_absmax!), map, NestedBlockSize, _offset);
    }

    /// <summary>The float32 absmax values decoding uses (dequantized when double-quantized), [blocks].</summary>
    public Tensor BlockScales()
    {
        if (!DoubleQuant) return absmax.alias();
        using var scope = NewDisposeScope();
        Tensor map = nested_quant_map ?? SharedTables.DynamicMap(absmax.device);
        Tensor values = map.index_select(0, absmax.to(ScalarType.Int32));
        return scope.MoveToOuter(ScaleBlocks(values, nested_absmax!, NestedBlockSize).add_(_offset));
    }

    /// <inheritdoc />
    public override Tensor Dequantize() => Dequantize(_compute);

    /// <summary>The weight decoded in float32, cast to the quant dtype (what bitsandbytes' dequantize_4bit returns), then to <paramref name="dtype"/>.</summary>
    public override Tensor Dequantize(ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        long n = InFeatures * OutFeatures;
        Tensor pairs = torch.view_as_real(SharedTables.BytePairs(QuantType, weight.device).index_select(0, weight.to(ScalarType.Int32)));
        Tensor values = pairs.view(-1);
        if (values.shape[0] != n) values = values.narrow(0, 0, n);
        Tensor w = ScaleBlocks(values, BlockScales(), BlockSize).view(OutFeatures, InFeatures);
        // bitsandbytes decodes in float32, casts to the quant dtype, and the layer casts to its compute dtype.
        if (QuantDtype != ScalarType.Float32) w = w.to(QuantDtype);
        if (dtype != w.dtype) w = w.to(dtype);
        return scope.MoveToOuter(w);
    }

    /// <inheritdoc />
    public override void Requantize(Tensor weight)
    {
        if (weight.dim() != 2 || weight.shape[0] != OutFeatures || weight.shape[1] != InFeatures)
            throw new ArgumentException($"Linear4bit [{OutFeatures}, {InFeatures}] cannot take a weight of shape [{string.Join(", ", weight.shape)}].");
        using Tensor cast = weight.detach().to(QuantDtype);
        Store(cast, DoubleQuant, WeightDevice);
    }

    /// <inheritdoc />
    public override string ToString() =>
        $"Linear4bit(in_features={InFeatures}, out_features={OutFeatures}, bias={bias is not null}, {QuantType.Name()}{(DoubleQuant ? " + double quant" : "")}, compute {QuantDTypes.Name(_compute)})";

    /// <summary>Converts only the bias: the quantized weight and its float32 scales keep their types.</summary>
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

    // values [n] * scales per block of blockSize (the last block may be partial), in place when whole.
    private static Tensor ScaleBlocks(Tensor values, Tensor scales, int blockSize)
    {
        long n = values.shape[0];
        long full = n / blockSize * blockSize;
        if (full == n) return values.view(-1, blockSize).mul_(scales.unsqueeze(1)).view(n);
        long blocks = full / blockSize;
        Tensor head = values.narrow(0, 0, full).view(-1, blockSize).mul(scales.narrow(0, 0, blocks).unsqueeze(1)).view(full);
        Tensor tail = values.narrow(0, full, n - full).mul(scales.narrow(0, blocks, 1));
        return torch.cat([head, tail]);
    }

    private static Parameter? CopyBias(Tensor? bias, ScalarType dtype, Device device)
    {
        if (bias is null) return null;
        using (no_grad()) return new Parameter(bias.detach().to(dtype, device, copy: true), requires_grad: false);
    }

    private void Store(Tensor fullPrecision, bool doubleQuant, Device device)
    {
        float[] values = QuantDTypes.ToSingles(fullPrecision);
        var packed = new byte[FourBitCodec.PackedLength(values.Length)];
        var scales = new float[FourBitCodec.BlockCount(values.Length, BlockSize)];
        FourBitCodec.Quantize(values, QuantType, BlockSize, packed, scales);
        QuantDtype = fullPrecision.dtype;
        StoreParts(packed, doubleQuant ? null : scales, doubleQuant ? NestedAbsmax.Quantize(scales) : null, device);
    }

    private void StoreParts(byte[] packed, float[]? scales, NestedAbsmax? nested, Device device)
    {
        Tensor newWeight = OnDevice(torch.tensor(packed), device);
        Tensor newAbsmax = nested is null ? OnDevice(torch.tensor(scales!), device) : OnDevice(torch.tensor(nested.Codes), device);
        Tensor? newNested = nested is null ? null : OnDevice(torch.tensor(nested.Absmax), device);
        bool standardMap = nested is null || nested.Code.AsSpan().SequenceEqual(Formats.BitsAndBytes.DynamicMap.Signed);
        Tensor? newMap = standardMap ? null : OnDevice(torch.tensor(nested!.Code), device);

        weight?.Dispose();
        absmax?.Dispose();
        nested_absmax?.Dispose();
        nested_quant_map?.Dispose();
        weight = newWeight;
        absmax = newAbsmax;
        nested_absmax = newNested;
        nested_quant_map = newMap;
        NestedBlockSize = nested?.BlockSize ?? 0;
        _offset = nested?.Offset ?? 0f;
        ConditionallyRegisterBuffer("weight", weight);
        ConditionallyRegisterBuffer("absmax", absmax);
        ConditionallyRegisterBuffer("nested_absmax", nested_absmax);
        ConditionallyRegisterBuffer("nested_quant_map", nested_quant_map);
    }

    private static Tensor OnDevice(Tensor cpu, Device device) =>
        (device.type == DeviceType.CPU ? cpu : cpu.to(device, disposeAfter: true)).DetachFromDisposeScope();
}
