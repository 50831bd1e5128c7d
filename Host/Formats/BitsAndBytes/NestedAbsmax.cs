namespace PeftHost.Formats.BitsAndBytes;

/// <summary>
/// Double quantization of the 4-bit absmax values (<c>bnb_4bit_use_double_quant</c>; bitsandbytes'
/// <c>functional.quantize_4bit</c> with <c>compress_statistics=True</c>): the float32 mean of the absmax
/// values is the offset; absmax - offset is quantized blockwise (blocks of 256) with the signed 8-bit
/// dynamic map. Decoding: <c>code[q] * nested_absmax[block] + offset</c>, in float32.
/// </summary>
public sealed class NestedAbsmax
{
    /// <summary>The nested block size bitsandbytes uses.</summary>
    public const int DefaultBlockSize = 256;

    /// <summary>Wraps stored double-quantization state (as read from a checkpoint).</summary>
    /// <exception cref="ArgumentException">The parts do not fit each other (code count, nested block count, code size).</exception>
    public NestedAbsmax(byte[] codes, float[] absmax, float[] code, int blockSize, float offset)
    {
        if (code.Length != 256) throw new ArgumentException($"nested_quant_map must have 256 values, it has {code.Length}.");
        if (blockSize <= 0) throw new ArgumentException($"nested_blocksize must be positive, got {blockSize}.");
        int blocks = BlockScaling.BlockCount(codes.Length, blockSize);
        if (absmax.Length != blocks)
            throw new ArgumentException($"{codes.Length} quantized absmax values in nested blocks of {blockSize} need {blocks} nested_absmax values, there are {absmax.Length}.");
        Codes = codes;
        Absmax = absmax;
        Code = code;
        BlockSize = blockSize;
        Offset = offset;
    }

    /// <summary>One 8-bit code per 4-bit block (the checkpoint's <c>absmax</c>, uint8).</summary>
    public byte[] Codes { get; }

    /// <summary>The float32 absmax of each nested block (<c>nested_absmax</c>).</summary>
    public float[] Absmax { get; }

    /// <summary>The 256-value code (<c>nested_quant_map</c>; <see cref="DynamicMap.Signed"/> when made here).</summary>
    public float[] Code { get; }

    /// <summary>The nested block size (<c>nested_blocksize</c>).</summary>
    public int BlockSize { get; }

    /// <summary>The mean subtracted before quantizing (<c>nested_offset</c>).</summary>
    public float Offset { get; }

    /// <summary>Bytes this state holds: the codes, the nested absmax, the code table and the offset.</summary>
    public long StorageBytes => Codes.Length + 4L * Absmax.Length + 4L * Code.Length + 4;

    /// <summary>
    /// Double-quantizes <paramref name="absmax"/>: the offset is their mean as torch computes it in float32
    /// on one thread (<c>absmax.mean()</c>), the code the signed dynamic map.
    /// </summary>
    /// <exception cref="ArgumentException">No values, or a non-finite one.</exception>
    public static NestedAbsmax Quantize(ReadOnlySpan<float> absmax, int blockSize = DefaultBlockSize)
    {
        if (absmax.IsEmpty) throw new ArgumentException("Double quantization needs at least one absmax value.");
        return Quantize(absmax, TorchFloatSum.Mean(absmax), blockSize);
    }

    /// <summary>Double-quantizes <paramref name="absmax"/> around a given <paramref name="offset"/>.</summary>
    /// <exception cref="ArgumentException">No values, or a non-finite one.</exception>
    public static NestedAbsmax Quantize(ReadOnlySpan<float> absmax, float offset, int blockSize = DefaultBlockSize)
    {
        if (absmax.IsEmpty) throw new ArgumentException("Double quantization needs at least one absmax value.");
        var centred = new float[absmax.Length];
        for (int i = 0; i < centred.Length; i++) centred[i] = absmax[i] - offset;
        float[] code = DynamicMap.Signed.ToArray();
        var codes = new byte[centred.Length];
        var nested = new float[BlockScaling.BlockCount(centred.Length, blockSize)];
        BlockwiseCodec.Quantize(centred, code, blockSize, codes, nested);
        return new NestedAbsmax(codes, nested, code, blockSize, offset);
    }

    /// <summary>The float32 absmax values this state decodes to (what dequantization scales blocks by).</summary>
    public float[] Dequantize()
    {
        var values = new float[Codes.Length];
        BlockwiseCodec.Dequantize(Codes, Absmax, Code, BlockSize, values);
        for (int i = 0; i < values.Length; i++) values[i] += Offset;
        return values;
    }
}
