using PeftHost.Formats.Gguf;
using Xunit;

namespace PeftHost.Formats.Tests.Gguf;

/// <summary>Block bytes computed by hand from llama.cpp's quantize_row_*_ref formulas.</summary>
public sealed class QuantizationGoldenTests
{
    [Fact]
    public void Q8_0_block_layout_matches_the_formula()
    {
        // x = j - 16: amax 16, d = 16/127 = 0.1259843 -> f16 0x3008 (1.0078125 * 2^-3 = 0.12597656).
        float[] x = Enumerable.Range(0, 32).Select(j => (float)(j - 16)).ToArray();
        byte[] block = GgmlQuantization.Quantize(GgmlType.Q8_0, x);
        Assert.Equal(34, block.Length);
        Assert.Equal(0x08, block[0]);
        Assert.Equal(0x30, block[1]);
        Assert.Equal(unchecked((byte)-127), block[2]);           // -16 * 127/16
        Assert.Equal(unchecked((byte)-119), block[2 + 1]);       // -15 * 7.9375 = -119.06
        Assert.Equal(0, block[2 + 16]);                          // 0
        Assert.Equal(8, block[2 + 17]);                          // 1 * 7.9375 -> 8
        Assert.Equal(16, block[2 + 18]);                         // 15.875 -> 16
        Assert.Equal(119, block[2 + 31]);                        // 15 * 7.9375 = 119.06
    }

    [Fact]
    public void Q8_0_rounds_halves_away_from_zero()
    {
        float[] x = new float[32];
        x[0] = 127f;           // d = 1 exactly -> f16 0x3C00
        x[1] = 2.5f;
        x[2] = -2.5f;
        x[3] = 0.5f;
        x[4] = -0.5f;
        x[5] = 1.4999f;
        byte[] block = GgmlQuantization.Quantize(GgmlType.Q8_0, x);
        Assert.Equal(new byte[] { 0x00, 0x3C, 127, 3, unchecked((byte)-3), 1, unchecked((byte)-1), 1, 0 }, block[..9]);
    }

    [Fact]
    public void Q4_0_block_layout_uses_signed_max_and_split_nibbles()
    {
        float[] x = new float[32];
        x[0] = -8f;     // largest magnitude, negative: d = -8 / -8 = 1 -> f16 0x3C00
        x[16] = 7f;     // 7 + 8.5 = 15.5 -> 15
        x[1] = 0f;      // 8.5 -> 8
        x[17] = -0.6f;  // 7.9 -> 7
        x[2] = 7.9f;    // 16.4 -> 16, clamped to 15
        x[18] = 0.4f;   // 8.9 -> 8
        byte[] block = GgmlQuantization.Quantize(GgmlType.Q4_0, x);
        Assert.Equal(18, block.Length);
        Assert.Equal(new byte[] { 0x00, 0x3C, 0xF0, 0x78, 0x8F }, block[..5]);
        Assert.All(block[5..], b => Assert.Equal(0x88, b));
    }

    [Fact]
    public void Q4_0_positive_max_gives_negative_scale_and_clamps()
    {
        float[] x = new float[32];
        x[5] = 4f;      // d = 4 / -8 = -0.5 -> f16 0xB800, 1/d = -2
        x[6] = -4f;     // 8 + 8.5 = 16.5 -> 16, clamped to 15
        x[21] = 1f;     // -2 + 8.5 = 6.5 -> 6
        byte[] block = GgmlQuantization.Quantize(GgmlType.Q4_0, x);
        Assert.Equal(0x00, block[0]);
        Assert.Equal(0xB8, block[1]);
        Assert.Equal(0x60, block[2 + 5]);   // low nibble: x[5] -> 0; high nibble: x[21] -> 6
        Assert.Equal(0x8F, block[2 + 6]);   // low: x[6] -> 15; high: x[22] = 0 -> 8
        float[] back = GgmlQuantization.Dequantize(GgmlType.Q4_0, block);
        Assert.Equal(4f, back[5]);
        Assert.Equal(-3.5f, back[6]);       // (15 - 8) * -0.5
        Assert.Equal(1f, back[21]);         // (6 - 8) * -0.5
    }

    [Fact]
    public void Q4_0_first_value_of_largest_magnitude_wins()
    {
        float[] x = new float[32];
        x[0] = -3f;
        x[1] = 3f;      // same magnitude, later: ignored, so d = -3 / -8 = 0.375 (f16 0x3600)
        byte[] block = GgmlQuantization.Quantize(GgmlType.Q4_0, x);
        Assert.Equal(new byte[] { 0x00, 0x36 }, block[..2]);
    }

    [Fact]
    public void Zero_blocks_encode_zero_scale()
    {
        float[] zeros = new float[64];
        byte[] q8 = GgmlQuantization.Quantize(GgmlType.Q8_0, zeros);
        Assert.All(q8, b => Assert.Equal(0, b));
        byte[] q4 = GgmlQuantization.Quantize(GgmlType.Q4_0, zeros);
        // 0 / -8 is -0.0 in IEEE arithmetic, so ggml stores the f16 bits 0x8000.
        Assert.Equal(new byte[] { 0x00, 0x80 }, q4[..2]);
        Assert.All(q4[2..18], b => Assert.Equal(0x88, b));
        Assert.All(GgmlQuantization.Dequantize(GgmlType.Q4_0, q4), v => Assert.Equal(0f, v));
    }

    [Fact]
    public void F16_and_F32_are_little_endian_ieee()
    {
        Assert.Equal(new byte[] { 0x00, 0x3C, 0x00, 0xC0 }, GgmlQuantization.Quantize(GgmlType.F16, [1f, -2f]));
        Assert.Equal(new byte[] { 0x00, 0x00, 0x80, 0x3F }, GgmlQuantization.Quantize(GgmlType.F32, [1f]));
    }

    [Fact]
    public void Quantized_types_reject_partial_blocks()
    {
        Assert.Throws<ArgumentException>(() => GgmlQuantization.Quantize(GgmlType.Q4_0, new float[33]));
        Assert.Throws<ArgumentException>(() => GgmlQuantization.Dequantize(GgmlType.Q8_0, new byte[35]));
    }
}
