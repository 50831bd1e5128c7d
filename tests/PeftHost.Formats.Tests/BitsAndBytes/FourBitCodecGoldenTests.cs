using System.Text;
using PeftHost.Formats.BitsAndBytes;
using PeftHost.Formats.Safetensors;
using PeftHost.Formats.Tests.Support;
using Xunit;

namespace PeftHost.Formats.Tests.BitsAndBytes;

/// <summary>4-bit quantization byte for byte against the lab's transcription of bitsandbytes (tests/fixtures/bnb/codec).</summary>
public sealed class FourBitCodecGoldenTests
{
    public static TheoryData<string, FourBitType> PlainCases => new()
    {
        { "nf4_hand", FourBitType.Nf4 }, { "fp4_hand", FourBitType.Fp4 }, { "nf4_blocks_tail", FourBitType.Nf4 },
        { "fp4_blocks_tail", FourBitType.Fp4 }, { "nf4_plain_matrix", FourBitType.Nf4 },
    };

    public static TheoryData<string, FourBitType> NestedCases => new()
    {
        { "nf4_double_quant", FourBitType.Nf4 }, { "fp4_double_quant", FourBitType.Fp4 }, { "nf4_double_quant_small", FourBitType.Nf4 },
    };

    [Theory]
    [MemberData(nameof(PlainCases))]
    public void Quantize_and_dequantize_match_bitsandbytes(string name, FourBitType type)
    {
        using SafetensorsFile f = BnbFixtures.Codec(name);
        float[] input = f.ReadSingles("input");
        var packed = new byte[FourBitCodec.PackedLength(input.Length)];
        var absmax = new float[FourBitCodec.BlockCount(input.Length, 64)];
        FourBitCodec.Quantize(input, type, 64, packed, absmax);

        Assert.Equal([packed.Length, 1], f.Info("packed").Shape);
        Assert.Equal(f.Bytes("packed"), packed);
        Assert.Equal(BnbFixtures.Bits(f.ReadSingles("absmax")), BnbFixtures.Bits(absmax));
        Assert.Equal(BnbFixtures.Bits(f.ReadSingles("quant_map")), BnbFixtures.Bits(FourBitCode.Table(type).ToArray()));

        var values = new float[input.Length];
        FourBitCodec.Dequantize(packed, absmax, type, 64, values);
        Assert.Equal(BnbFixtures.Bits(f.ReadSingles("dequantized")), BnbFixtures.Bits(values));

        var state = new FourBitQuantState { QuantType = type, BlockSize = 64, DType = "float32", Shape = f.Info("input").Shape };
        Assert.Equal(Encoding.UTF8.GetString(f.Bytes(FourBitQuantState.KeySuffix(type))), Encoding.UTF8.GetString(state.ToJsonBytes()));
    }

    [Theory]
    [MemberData(nameof(NestedCases))]
    public void Double_quantization_matches_bitsandbytes(string name, FourBitType type)
    {
        using SafetensorsFile f = BnbFixtures.Codec(name);
        float[] input = f.ReadSingles("input");
        var packed = new byte[FourBitCodec.PackedLength(input.Length)];
        var absmax = new float[FourBitCodec.BlockCount(input.Length, 64)];
        FourBitCodec.Quantize(input, type, 64, packed, absmax);
        Assert.Equal(f.Bytes("packed"), packed);
        Assert.Equal(BnbFixtures.Bits(f.ReadSingles("absmax_fp32")), BnbFixtures.Bits(absmax));

        NestedAbsmax nested = NestedAbsmax.Quantize(absmax);
        Assert.Equal(BitConverter.SingleToInt32Bits(f.ReadSingles("offset")[0]), BitConverter.SingleToInt32Bits(nested.Offset));
        Assert.Equal(f.Bytes("absmax"), nested.Codes);
        Assert.Equal(BnbFixtures.Bits(f.ReadSingles("nested_absmax")), BnbFixtures.Bits(nested.Absmax));
        Assert.Equal(BnbFixtures.Bits(f.ReadSingles("nested_quant_map")), BnbFixtures.Bits(nested.Code));

        float[] decodedAbsmax = nested.Dequantize();
        Assert.Equal(BnbFixtures.Bits(f.ReadSingles("absmax_dequantized")), BnbFixtures.Bits(decodedAbsmax));
        var values = new float[input.Length];
        FourBitCodec.Dequantize(packed, decodedAbsmax, type, 64, values);
        Assert.Equal(BnbFixtures.Bits(f.ReadSingles("dequantized")), BnbFixtures.Bits(values));

        var state = new FourBitQuantState
        {
            QuantType = type, BlockSize = 64, DType = "float32", Shape = f.Info("input").Shape,
            NestedBlockSize = 256, NestedDType = "float32", NestedOffset = nested.Offset,
        };
        Assert.Equal(Encoding.UTF8.GetString(f.Bytes(FourBitQuantState.KeySuffix(type))), Encoding.UTF8.GetString(state.ToJsonBytes()));
    }

    [Fact]
    public void A_block_is_scaled_by_its_absmax_and_packed_high_nibble_first()
    {
        // By hand: one block of 64, absmax 4 at index 1. Scaled values 0.25, -1, 0, 1, ...
        float[] x = new float[64];
        x[0] = 1f;      // 0.25  -> NF4 code 10 (0.2461)
        x[1] = -4f;     // -1    -> code 0
        x[2] = 0f;      // 0     -> code 7
        x[3] = 4f;      // 1     -> code 15
        var packed = new byte[32];
        var absmax = new float[1];
        FourBitCodec.Quantize(x, FourBitType.Nf4, 64, packed, absmax);
        Assert.Equal(4f, absmax[0]);
        Assert.Equal(0xA0, packed[0]);
        Assert.Equal(0x7F, packed[1]);
        Assert.All(packed[2..], b => Assert.Equal(0x77, b));
    }

    [Fact]
    public void A_tail_block_has_its_own_absmax_and_an_odd_count_is_padded_with_zero()
    {
        float[] x = [.. Enumerable.Repeat(1f, 64), 0.5f, -2f, 1f];   // 64 + 3 values
        var packed = new byte[34];
        var absmax = new float[2];
        FourBitCodec.Quantize(x, FourBitType.Nf4, 64, packed, absmax);
        Assert.Equal([1f, 2f], absmax);
        Assert.Equal(0xFF, packed[0]);
        // 0.5 / 2 = 0.25 -> 10, -2 / 2 = -1 -> 0; 1 / 2 = 0.5 -> 12 (0.4407 is nearer than 0.5626), pad 0 -> 7.
        Assert.Equal(0xA0, packed[32]);
        Assert.Equal(0xC7, packed[33]);
    }

    [Fact]
    public void Bad_sizes_and_values_are_refused()
    {
        var packed = new byte[32];
        Assert.Throws<ArgumentException>(() => FourBitCodec.Quantize(new float[64], FourBitType.Nf4, 64, new byte[31], new float[1]));
        Assert.Throws<ArgumentException>(() => FourBitCodec.Quantize(new float[64], FourBitType.Nf4, 64, packed, new float[2]));
        Assert.Throws<ArgumentException>(() => FourBitCodec.Quantize(new float[64], FourBitType.Nf4, 48, packed, new float[2]));
        float[] nan = new float[64];
        nan[5] = float.NaN;
        Assert.Throws<ArgumentException>(() => FourBitCodec.Quantize(nan, FourBitType.Nf4, 64, packed, new float[1]));
    }
}
