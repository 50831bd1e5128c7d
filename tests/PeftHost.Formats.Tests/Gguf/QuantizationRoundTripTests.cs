using PeftHost.Formats.Gguf;
using Xunit;

namespace PeftHost.Formats.Tests.Gguf;

/// <summary>Round trips on random data stay within each type's quantization error.</summary>
public sealed class QuantizationRoundTripTests
{
    private static float[] Random(int n, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 4 - 2) * (rng.Next(4) == 0 ? 10f : 1f)).ToArray();
    }

    [Fact]
    public void F32_round_trip_is_exact()
    {
        float[] x = Random(96, 1);
        Assert.Equal(x, GgmlQuantization.Dequantize(GgmlType.F32, GgmlQuantization.Quantize(GgmlType.F32, x)));
    }

    [Fact]
    public void F16_round_trip_is_within_half_an_ulp()
    {
        float[] x = Random(97, 2);
        float[] y = GgmlQuantization.Dequantize(GgmlType.F16, GgmlQuantization.Quantize(GgmlType.F16, x));
        for (int i = 0; i < x.Length; i++)
        {
            Assert.True(MathF.Abs(x[i] - y[i]) <= MathF.Abs(x[i]) * MathF.Pow(2, -11) + 1e-7f, $"{i}: {x[i]} vs {y[i]}");
        }
    }

    [Theory]
    [InlineData(GgmlType.Q8_0, 0.5 + 127.0 / 2048)]   // half a step, plus the f16 rounding of d times |q| <= 127
    [InlineData(GgmlType.Q4_0, 1.0 + 8.0 / 2048)]     // a full step where 16 is clamped to 15, plus d's f16 rounding
    public void Quantized_round_trip_is_within_the_step(GgmlType type, double stepsAllowed)
    {
        float[] x = Random(32 * 41, 3);
        float[] y = GgmlQuantization.Dequantize(type, GgmlQuantization.Quantize(type, x));
        for (int b = 0; b < x.Length / 32; b++)
        {
            float amax = x.Skip(b * 32).Take(32).Max(MathF.Abs);
            float step = type == GgmlType.Q8_0 ? amax / 127 : amax / 8;
            for (int j = b * 32; j < b * 32 + 32; j++)
            {
                Assert.True(MathF.Abs(x[j] - y[j]) <= step * stepsAllowed + 1e-6f, $"{type} element {j}: {x[j]} vs {y[j]} (step {step})");
            }
        }
    }

    [Theory]
    [InlineData(GgmlType.Q8_0)]
    [InlineData(GgmlType.Q4_0)]
    public void Requantizing_dequantized_values_is_stable(GgmlType type)
    {
        byte[] once = GgmlQuantization.Quantize(type, Random(32 * 5, 4));
        byte[] twice = GgmlQuantization.Quantize(type, GgmlQuantization.Dequantize(type, once));
        Assert.Equal(once, twice);
    }
}
