namespace PeftHost.Formats.BitsAndBytes;

/// <summary>
/// How bitsandbytes' default backend scales a block before picking codes (<c>backends/default/ops.py</c>,
/// <c>quantize_4bit</c> and <c>quantize_blockwise</c>): a full block is multiplied by the float32 reciprocal
/// of its absmax (clamped to at least 1e-38 so an all-zero block gives zeros) and its stored absmax is the
/// plain maximum; the last, partial block is divided by its absmax, and the stored absmax is the clamped
/// one. Both are clamped to [-1, 1].
/// </summary>
internal static class BlockScaling
{
    // Python's 1e-38 (a double) as the float32 torch compares with: a subnormal.
    private const float MinAbsmax = (float)1e-38;

    public static int BlockCount(long values, int blockSize) => checked((int)((values + blockSize - 1) / blockSize));

    /// <summary>Writes block <paramref name="block"/>'s scaled values and returns the absmax to store.</summary>
    public static float Scale(ReadOnlySpan<float> block, bool isLast, int blockSize, Span<float> scaled)
    {
        float max = 0f;
        foreach (float v in block)
        {
            float a = MathF.Abs(v);
            if (!float.IsFinite(a)) throw new ArgumentException("Cannot quantize a non-finite value (NaN or infinity).");
            if (a > max) max = a;
        }
        bool partial = isLast && block.Length < blockSize;
        if (partial)
        {
            float am = MathF.Max(max, MinAbsmax);
            for (int i = 0; i < block.Length; i++) scaled[i] = Clamp(block[i] / am);
            return am;
        }
        float inverse = 1f / MathF.Max(max, MinAbsmax);
        for (int i = 0; i < block.Length; i++) scaled[i] = Clamp(block[i] * inverse);
        return max;
    }

    private static float Clamp(float x) => x < -1f ? -1f : x > 1f ? 1f : x;
}
