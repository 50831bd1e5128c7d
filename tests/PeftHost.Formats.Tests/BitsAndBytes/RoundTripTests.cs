using PeftHost.Formats.BitsAndBytes;
using Xunit;

namespace PeftHost.Formats.Tests.BitsAndBytes;

/// <summary>Quantization error bounds on random and real-shaped weights.</summary>
public sealed class RoundTripTests
{
    // Half the widest gap between neighbouring codes: the most a scaled value can move.
    private static float HalfGap(FourBitType type)
    {
        float[] sorted = [.. FourBitCode.Table(type).ToArray().Order()];
        float gap = 0;
        for (int i = 1; i < sorted.Length; i++) gap = MathF.Max(gap, sorted[i] - sorted[i - 1]);
        return gap / 2;
    }

    private static float[] Normal(int n, double std, int seed)
    {
        var rng = new Random(seed);
        var x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float)(std * Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()));
        return x;
    }

    [Theory]
    [InlineData(FourBitType.Nf4, false, 256, 512)]
    [InlineData(FourBitType.Fp4, false, 256, 512)]
    [InlineData(FourBitType.Nf4, true, 1024, 2816)]    // a Llama MLP projection of the medium preset
    [InlineData(FourBitType.Fp4, true, 512, 1408)]
    public void Every_value_moves_at_most_half_a_code_gap_of_its_block(FourBitType type, bool doubleQuant, int rows, int columns)
    {
        float[] w = Normal(rows * columns, 0.02, rows + columns);
        w[17] = 0.4f;   // an outlier
        var packed = new byte[FourBitCodec.PackedLength(w.Length)];
        var absmax = new float[FourBitCodec.BlockCount(w.Length, 64)];
        FourBitCodec.Quantize(w, type, 64, packed, absmax);
        float[] scales = absmax;
        float[] scaleError = new float[absmax.Length];
        if (doubleQuant)
        {
            scales = NestedAbsmax.Quantize(absmax).Dequantize();
            for (int b = 0; b < absmax.Length; b++) scaleError[b] = MathF.Abs(scales[b] - absmax[b]);
        }
        var back = new float[w.Length];
        FourBitCodec.Dequantize(packed, scales, type, 64, back);

        float half = HalfGap(type);
        double sq = 0, sqw = 0;
        for (int i = 0; i < w.Length; i++)
        {
            int b = i / 64;
            float bound = absmax[b] * half * 1.0001f + scaleError[b] + 1e-9f;
            Assert.True(MathF.Abs(back[i] - w[i]) <= bound, $"value {i}: {w[i]} -> {back[i]}, bound {bound}");
            sq += (back[i] - w[i]) * (double)(back[i] - w[i]);
            sqw += w[i] * (double)w[i];
        }
        // Gaussian weights in blocks of 64: NF4 keeps the RMS error near a tenth of the RMS weight, FP4 a bit above.
        double relative = Math.Sqrt(sq / sqw);
        Assert.True(relative < (type == FourBitType.Nf4 ? 0.11 : 0.13), $"relative RMS error {relative:F4}");
    }

    [Fact]
    public void Double_quantized_absmax_stays_within_one_code_step()
    {
        float[] absmax = Normal(5000, 0.01, 3).Select(v => MathF.Abs(v) + 0.02f).ToArray();
        NestedAbsmax nested = NestedAbsmax.Quantize(absmax);
        float[] back = nested.Dequantize();
        Assert.Equal(20, nested.Absmax.Length);   // 5000 / 256, rounded up
        for (int i = 0; i < absmax.Length; i++)
            Assert.True(MathF.Abs(back[i] - absmax[i]) <= nested.Absmax[i / 256] * 0.0071f + 1e-7f, $"absmax {i}: {absmax[i]} -> {back[i]}");
    }

    [Fact]
    public void Int8_rows_move_at_most_half_a_step_after_the_float16_cast()
    {
        float[] w = Normal(300 * 200, 0.05, 9);
        var cb = new sbyte[w.Length];
        var scb = new float[300];
        Int8RowCodec.Quantize(w, 200, cb, scb);
        var back = new float[w.Length];
        Int8RowCodec.Dequantize(cb, scb, 200, back);
        for (int i = 0; i < w.Length; i++)
        {
            float h = (float)(Half)w[i];
            Assert.True(MathF.Abs(back[i] - h) <= scb[i / 200] / 127f * 0.5001f, $"value {i}");
        }
    }
}
