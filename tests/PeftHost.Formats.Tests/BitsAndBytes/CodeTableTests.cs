using PeftHost.Formats.BitsAndBytes;
using PeftHost.Formats.Safetensors;
using PeftHost.Formats.Tests.Support;
using Xunit;

namespace PeftHost.Formats.Tests.BitsAndBytes;

/// <summary>The 4-bit code tables and the 8-bit dynamic map against bitsandbytes' definitions.</summary>
public sealed class CodeTableTests
{
    [Fact]
    public void Tables_and_bounds_equal_the_reference_bit_for_bit()
    {
        using SafetensorsFile t = BnbFixtures.Codec("tables");
        Assert.Equal(BnbFixtures.Bits(t.ReadSingles("nf4_code")), BnbFixtures.Bits(FourBitCode.Table(FourBitType.Nf4).ToArray()));
        Assert.Equal(BnbFixtures.Bits(t.ReadSingles("fp4_code")), BnbFixtures.Bits(FourBitCode.Table(FourBitType.Fp4).ToArray()));
        Assert.Equal(BnbFixtures.Bits(t.ReadSingles("nf4_bounds")), BnbFixtures.Bits(FourBitCode.Bounds(FourBitType.Nf4).ToArray()));
        Assert.Equal(BnbFixtures.Bits(t.ReadSingles("fp4_bounds")), BnbFixtures.Bits(FourBitCode.Bounds(FourBitType.Fp4).ToArray()));
        Assert.Equal(t.ReadInt64s("nf4_order"), FourBitCode.SortOrder(FourBitType.Nf4).ToArray().Select(b => (long)b));
        Assert.Equal(t.ReadInt64s("fp4_order"), FourBitCode.SortOrder(FourBitType.Fp4).ToArray().Select(b => (long)b));
        Assert.Equal(BnbFixtures.Bits(t.ReadSingles("dynamic_map")), BnbFixtures.Bits(DynamicMap.Signed.ToArray()));
        Assert.Equal(BnbFixtures.Bits(t.ReadSingles("dynamic_bounds")), BnbFixtures.Bits(DynamicMap.Bounds(DynamicMap.Signed)));
    }

    [Fact]
    public void Nf4_is_the_sorted_normal_quantile_table_of_the_paper()
    {
        ReadOnlySpan<float> nf4 = FourBitCode.Table(FourBitType.Nf4);
        Assert.Equal(16, nf4.Length);
        Assert.Equal(-1f, nf4[0]);
        Assert.Equal(0f, nf4[7]);
        Assert.Equal(1f, nf4[15]);
        Assert.Equal(0.7229568362236023, nf4[14], 1e-7);
        for (int i = 1; i < 16; i++) Assert.True(nf4[i - 1] < nf4[i]);
        // Midpoints: a value equal to one takes the lower code.
        Assert.Equal(6, FourBitCode.Nearest(FourBitType.Nf4, (nf4[6] + nf4[7]) / 2));
        Assert.Equal(7, FourBitCode.Nearest(FourBitType.Nf4, MathF.BitIncrement((nf4[6] + nf4[7]) / 2)));
        Assert.Equal(7, FourBitCode.Nearest(FourBitType.Nf4, 0f));
    }

    [Fact]
    public void Fp4_codes_follow_its_bit_layout_divided_by_12()
    {
        ReadOnlySpan<float> fp4 = FourBitCode.Table(FourBitType.Fp4);
        // 0b0011 = 12 / 12, 0b0001 = 0.0625 / 12 (subnormal), sign bit 8; code 8 is +0.0 like code 0.
        Assert.Equal(1f, fp4[0b0011]);
        Assert.Equal(-1f, fp4[0b1011]);
        Assert.Equal(0.0625f / 12f, fp4[0b0001]);
        Assert.Equal(0.5f, fp4[0b0101]);
        Assert.Equal(BitConverter.SingleToInt32Bits(0f), BitConverter.SingleToInt32Bits(fp4[8]));
        // The default backend's stable sort order sends (0, 0.0026] to code 8 and (-0.0026, 0] to code 0.
        Assert.Equal(0, FourBitCode.Nearest(FourBitType.Fp4, 0f));
        Assert.Equal(0, FourBitCode.Nearest(FourBitType.Fp4, -0.001f));
        Assert.Equal(8, FourBitCode.Nearest(FourBitType.Fp4, 0.001f));
        // A negative tie goes to the lower value, i.e. the larger magnitude: -0.2916... between -1/3 and -1/4.
        float tie = (fp4[0b1100] + fp4[0b1111]) / 2;
        Assert.Equal(0b1100, FourBitCode.Nearest(FourBitType.Fp4, tie));
        Assert.Equal(0b0111, FourBitCode.Nearest(FourBitType.Fp4, -tie));
    }

    [Fact]
    public void Dynamic_map_matches_its_definition()
    {
        ReadOnlySpan<float> map = DynamicMap.Signed;
        Assert.Equal(256, map.Length);
        Assert.Equal(0f, map[127]);
        Assert.Equal(1f, map[255]);
        Assert.Equal(-0.99296875f, map[0]);
        // Independently, in double: for exponent i the means of linspace(0.1, 1, 2^i + 1) times 10^(i-6), both signs.
        var expected = new List<double> { 0, 1 };
        for (int i = 0; i < 7; i++)
        {
            int n = (1 << i) + 1;
            for (int k = 0; k + 1 < n; k++)
            {
                double a = 0.1 + 0.9 * k / (n - 1), b = 0.1 + 0.9 * (k + 1) / (n - 1);
                expected.Add(Math.Pow(10, i - 6) * (a + b) / 2);
                expected.Add(-Math.Pow(10, i - 6) * (a + b) / 2);
            }
        }
        expected.Sort();
        for (int i = 0; i < 256; i++) Assert.True(Math.Abs(map[i] - expected[i]) <= 1e-6 * Math.Abs(expected[i]), $"map[{i}] = {map[i]}, definition {expected[i]}");
    }

    [Fact]
    public void Torch_float32_sum_order_is_reproduced()
    {
        using SafetensorsFile t = BnbFixtures.Codec("torch_sums");
        foreach (int n in new[] { 3, 7, 8, 33, 100, 1000, 40000 })
        {
            float[] x = t.ReadSingles($"x_{n}");
            Assert.Equal(BitConverter.SingleToInt32Bits(t.ReadSingles($"sum_{n}")[0]), BitConverter.SingleToInt32Bits(TorchFloatSum.Sum(x)));
            Assert.Equal(BitConverter.SingleToInt32Bits(t.ReadSingles($"mean_{n}")[0]), BitConverter.SingleToInt32Bits(TorchFloatSum.Mean(x)));
        }
    }
}
