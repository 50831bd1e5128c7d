namespace PeftHost.Formats.BitsAndBytes;

/// <summary>
/// bitsandbytes' blockwise 8-bit quantization with a sorted 256-value code (<c>backends/default/ops.py</c>:
/// <c>quantize_blockwise</c>, <c>_dequantize_blockwise_compute</c>): blocks scaled by their absmax
/// (<see cref="BlockScaling"/>), each value the code index <c>torch.bucketize</c> gives on the code's midpoints
/// (a tie takes the lower value); decoding is <c>code[q] * absmax</c>. Double quantization stores the 4-bit
/// absmax values this way (<see cref="NestedAbsmax"/>).
/// </summary>
public static class BlockwiseCodec
{
    /// <summary>Quantizes <paramref name="values"/> with the increasing 256-value <paramref name="code"/>.</summary>
    /// <exception cref="ArgumentException">Wrong buffer sizes, a code that is not 256 increasing values, or a non-finite value.</exception>
    public static void Quantize(ReadOnlySpan<float> values, ReadOnlySpan<float> code, int blockSize, Span<byte> codes, Span<float> absmax)
    {
        CheckSizes(values.Length, code, blockSize, codes.Length, absmax.Length);
        float[] bounds = DynamicMap.Bounds(code);
        float[] scaled = new float[blockSize];
        int blocks = absmax.Length;
        for (int b = 0; b < blocks; b++)
        {
            int start = b * blockSize;
            ReadOnlySpan<float> block = values.Slice(start, Math.Min(blockSize, values.Length - start));
            absmax[b] = BlockScaling.Scale(block, b == blocks - 1, blockSize, scaled);
            for (int i = 0; i < block.Length; i++) codes[start + i] = (byte)SortedBuckets.Below(bounds, scaled[i]);
        }
    }

    /// <summary>Decodes <paramref name="codes"/> into <paramref name="values"/>: <c>code[q] * absmax[block]</c>.</summary>
    /// <exception cref="ArgumentException">The buffer sizes do not fit each other.</exception>
    public static void Dequantize(ReadOnlySpan<byte> codes, ReadOnlySpan<float> absmax, ReadOnlySpan<float> code, int blockSize, Span<float> values)
    {
        CheckSizes(values.Length, code, blockSize, codes.Length, absmax.Length, checkOrder: false);
        for (int i = 0; i < values.Length; i++) values[i] = code[codes[i]] * absmax[i / blockSize];
    }

    private static void CheckSizes(int values, ReadOnlySpan<float> code, int blockSize, int codeCount, int absmaxCount, bool checkOrder = true)
    {
        if (code.Length != 256) throw new ArgumentException($"An 8-bit code has 256 values, this one {code.Length}.");
        if (checkOrder)
            for (int i = 1; i < code.Length; i++)
                if (!(code[i - 1] <= code[i])) throw new ArgumentException($"The 8-bit code must be increasing (bitsandbytes assumes it): value {i} is below value {i - 1}.");
        if (blockSize <= 0) throw new ArgumentException($"Block size must be positive, got {blockSize}.");
        if (codeCount != values) throw new ArgumentException($"{values} values take {values} codes, the buffer has {codeCount}.");
        if (absmaxCount != BlockScaling.BlockCount(values, blockSize))
            throw new ArgumentException($"{values} values in blocks of {blockSize} have {BlockScaling.BlockCount(values, blockSize)} absmax values, the buffer has {absmaxCount}.");
    }
}
