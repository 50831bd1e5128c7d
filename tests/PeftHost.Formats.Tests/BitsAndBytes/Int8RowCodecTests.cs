using PeftHost.Formats.BitsAndBytes;
using PeftHost.Formats.Safetensors;
using PeftHost.Formats.Tests.Support;
using Xunit;

namespace PeftHost.Formats.Tests.BitsAndBytes;

/// <summary>8-bit Int8Params (CB, SCB) against the lab's transcription of bitsandbytes.</summary>
public sealed class Int8RowCodecTests
{
    [Theory]
    [InlineData("int8_hand")]
    [InlineData("int8_random")]
    public void Cb_and_scb_match_bitsandbytes(string name)
    {
        using SafetensorsFile f = BnbFixtures.Codec(name);
        float[] w = f.ReadSingles("input");
        int columns = (int)f.Info("input").Shape[1];
        var cb = new sbyte[w.Length];
        var scb = new float[w.Length / columns];
        Int8RowCodec.Quantize(w, columns, cb, scb);
        Assert.Equal(f.SBytes("CB"), cb);
        Assert.Equal(BnbFixtures.Bits(f.ReadSingles("SCB")), BnbFixtures.Bits(scb));
        var back = new float[w.Length];
        Int8RowCodec.Dequantize(cb, scb, columns, back);
        Assert.Equal(BnbFixtures.Bits(f.ReadSingles("dequantized")), BnbFixtures.Bits(back));
        Assert.Empty(f.Info("weight_format").Shape);
        Assert.Equal(0, f.GetBytes("weight_format")[0]);
    }

    [Fact]
    public void Rows_round_half_to_even_and_a_zero_row_stays_zero()
    {
        // Absmax 127: the scale is 1, so the values are rounded as they are.
        float[] w = [127f, 0.5f, 1.5f, 2.5f, -0.5f, -2.5f, 0f, 0f, 0f, 0f, 0f, 0f];
        var cb = new sbyte[12];
        var scb = new float[2];
        Int8RowCodec.Quantize(w, 6, cb, scb);
        Assert.Equal(new sbyte[] { 127, 0, 2, 2, 0, -2, 0, 0, 0, 0, 0, 0 }, cb);
        Assert.Equal([127f, 0f], scb);
    }

    [Fact]
    public void Values_beyond_float16_are_refused()
    {
        Assert.Throws<ArgumentException>(() => Int8RowCodec.Quantize([1e6f, 1f], 2, new sbyte[2], new float[1]));
        Assert.Throws<ArgumentException>(() => Int8RowCodec.Quantize([1f, 1f, 1f], 2, new sbyte[3], new float[1]));
    }
}
