namespace PeftHost.Formats.BitsAndBytes;

/// <summary>
/// bitsandbytes' blockwise 4-bit quantization (<c>backends/default/ops.py</c>: <c>quantize_4bit</c>,
/// <c>_dequantize_4bit_compute</c>): values in blocks of <c>blocksize</c> (64 in transformers), each scaled
/// by its absmax (<see cref="BlockScaling"/>) and replaced by the nearest code of the NF4 or FP4 table
/// (<see cref="FourBitCode.Nearest"/>; a tie takes the lower value). Two codes per byte, the first value in
/// the high nibble; an odd count is padded with the code of 0. Decoding is <c>table[code] * absmax</c> in float32.
/// </summary>
public static class FourBitCodec
{
    /// <summary>The block size transformers quantizes with.</summary>
    public const int DefaultBlockSize = 64;

    /// <summary>Block sizes bitsandbytes accepts.</summary>
    public static IReadOnlyList<int> BlockSizes { get; } = [32, 64, 128, 256, 512, 1024, 2048, 4096];

    /// <summary>Bytes of packed codes for <paramref name="values"/> values.</summary>
    public static long PackedLength(long values) => (values + 1) / 2;

    /// <summary>Absmax values (blocks) for <paramref name="values"/> values.</summary>
    public static int BlockCount(long values, int blockSize) => BlockScaling.BlockCount(values, blockSize);

    /// <summary>Quantizes <paramref name="values"/> into <paramref name="packed"/> and <paramref name="absmax"/>.</summary>
    /// <exception cref="ArgumentException">Wrong buffer sizes, a block size bitsandbytes does not know, or a non-finite value.</exception>
    public static void Quantize(ReadOnlySpan<float> values, FourBitType type, int blockSize, Span<byte> packed, Span<float> absmax)
    {
        CheckSizes(values.Length, type, blockSize, packed.Length, absmax.Length);
        Span<float> scaled = blockSize <= 4096 ? stackalloc float[blockSize] : new float[blockSize];
        ReadOnlySpan<float> bounds = FourBitCode.Bounds(type);
        ReadOnlySpan<byte> order = FourBitCode.SortOrder(type);
        int blocks = absmax.Length;
        for (int b = 0; b < blocks; b++)
        {
            int start = b * blockSize;
            ReadOnlySpan<float> block = values.Slice(start, Math.Min(blockSize, values.Length - start));
            absmax[b] = BlockScaling.Scale(block, b == blocks - 1, blockSize, scaled);
            for (int i = 0; i < block.Length; i++)
            {
                byte q = order[SortedBuckets.Below(bounds, scaled[i])];
                int at = start + i;
                if ((at & 1) == 0) packed[at >> 1] = (byte)(q << 4);
                else packed[at >> 1] |= q;
            }
        }
        // An odd count: the padding value 0 takes the low nibble of the last byte.
        if ((values.Length & 1) == 1) packed[^1] |= order[SortedBuckets.Below(bounds, 0f)];
    }

    /// <summary>Decodes <paramref name="packed"/> (with the float32 <paramref name="absmax"/>) into <paramref name="values"/>.</summary>
    /// <exception cref="ArgumentException">The buffer sizes do not fit each other.</exception>
    public static void Dequantize(ReadOnlySpan<byte> packed, ReadOnlySpan<float> absmax, FourBitType type, int blockSize, Span<float> values)
    {
        CheckSizes(values.Length, type, blockSize, packed.Length, absmax.Length);
        ReadOnlySpan<float> table = FourBitCode.Table(type);
        for (int i = 0; i < values.Length; i++)
        {
            int q = (i & 1) == 0 ? packed[i >> 1] >> 4 : packed[i >> 1] & 0x0F;
            values[i] = table[q] * absmax[i / blockSize];
        }
    }

    private static void CheckSizes(long values, FourBitType type, int blockSize, long packedBytes, int absmaxCount)
    {
        _ = FourBitCode.Table(type);
        if (!BlockSizes.Contains(blockSize))
            throw new ArgumentException($"4-bit blocksize {blockSize} is not one bitsandbytes uses ({string.Join(", ", BlockSizes)}).");
        if (packedBytes != PackedLength(values))
            throw new ArgumentException($"{values} values pack into {PackedLength(values)} bytes, the buffer has {packedBytes}.");
        if (absmaxCount != BlockCount(values, blockSize))
            throw new ArgumentException($"{values} values in blocks of {blockSize} have {BlockCount(values, blockSize)} absmax values, the buffer has {absmaxCount}.");
    }
}
