namespace PeftHost.Formats.BitsAndBytes;

/// <summary>
/// bitsandbytes' signed 8-bit dynamic map (<c>functional.create_dynamic_map(signed=True,
/// max_exponent_bits=7, total_bits=8)</c>), the code double quantization stores absmax values with: for
/// each exponent i = 0..6, the 2^i midpoints of <c>torch.linspace(0.1, 1, 2^i + 1)</c> times 10^(i-6), with
/// both signs, then 0 and 1, sorted (256 values; the most negative is -0.99296875, there is no -1).
/// </summary>
/// <remarks>
/// The last bits of torch.linspace depend on its CPU kernel. This reproduces the AVX2 kernel (8 float
/// lanes) that made the reference files: each group of 8 starts from a scalar <c>start + step * i</c> (or
/// <c>end - step * (steps - i - 1)</c> past the middle), which the compiler fuses into one multiply-add,
/// and continues with <c>base + j * step</c>; the last elements that fill no pair of groups are scalar.
/// Checkpoints carry the map they were written with (<c>nested_quant_map</c>) and are decoded with it.
/// </remarks>
public static class DynamicMap
{
    private const int Lanes = 8;
    private static readonly float[] Values = Build();

    /// <summary>The 256 values, increasing; index 127 is 0 and index 255 is 1.</summary>
    public static ReadOnlySpan<float> Signed => Values;

    /// <summary>The 255 float32 midpoints quantize_blockwise compares with: <c>(code[:-1] + code[1:]) / 2</c>.</summary>
    public static float[] Bounds(ReadOnlySpan<float> code)
    {
        var bounds = new float[code.Length - 1];
        for (int i = 0; i < bounds.Length; i++) bounds[i] = (code[i] + code[i + 1]) / 2f;
        return bounds;
    }

    private static float[] Build()
    {
        var data = new List<float>(256);
        for (int i = 0; i < 7; i++)
        {
            float[] boundaries = Linspace(0.1f, 1f, (1 << i) + 1);
            // Python's 10 ** (i - 6) (a double; the integer 1 for i = 6) multiplies the float32 tensor as float32.
            float scale = (float)Math.Pow(10, i - 6);
            for (int k = 0; k + 1 < boundaries.Length; k++) data.Add(scale * ((boundaries[k] + boundaries[k + 1]) / 2f));
            for (int k = 0; k + 1 < boundaries.Length; k++) data.Add(-scale * ((boundaries[k] + boundaries[k + 1]) / 2f));
        }
        data.Add(0f);
        data.Add(1f);
        data.Sort();
        return [.. data];
    }

    /// <summary>torch.linspace(start, end, steps) in float32 as its AVX2 CPU kernel computes it.</summary>
    internal static float[] Linspace(float start, float end, int steps)
    {
        var result = new float[steps];
        float step = (end - start) / (steps - 1);
        int halfway = steps / 2;
        float Scalar(int i) => i < halfway ? MathF.FusedMultiplyAdd(step, i, start) : MathF.FusedMultiplyAdd(-step, steps - i - 1, end);
        // The vectorised loop takes two groups at a time while two fit; the rest is scalar.
        int idx = 0;
        for (; idx + 2 * Lanes <= steps; idx += 2 * Lanes)
        {
            for (int g = idx; g < idx + 2 * Lanes; g += Lanes)
            {
                float first = Scalar(g);
                for (int j = 0; j < Lanes; j++) result[g + j] = first + j * step;
            }
        }
        for (; idx < steps; idx++) result[idx] = Scalar(idx);
        return result;
    }
}
