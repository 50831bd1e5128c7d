using System.Buffers.Binary;

namespace PeftHost.Formats.Gguf;

/// <summary>
/// GGML's Q8_0 blocks, bit for bit as llama.cpp's quantize_row_q8_0_ref / dequantize_row_q8_0:
/// per 32 values, <c>d = amax / 127</c> stored as f16, then 32 signed bytes <c>q = roundf(x * (1/d))</c>.
/// </summary>
public static class Q8_0Codec
{
    private const int Qk = GgmlTypeTraits.QuantBlockSize;

    /// <summary>Quantizes <paramref name="source"/> (a multiple of 32 values) into <paramref name="destination"/>.</summary>
    public static void Quantize(ReadOnlySpan<float> source, Span<byte> destination)
    {
        int blocks = CheckSizes(source.Length, destination.Length);
        for (int b = 0; b < blocks; b++)
        {
            ReadOnlySpan<float> x = source.Slice(b * Qk, Qk);
            Span<byte> y = destination.Slice(b * GgmlTypeTraits.Q8_0BlockBytes, GgmlTypeTraits.Q8_0BlockBytes);
            float amax = 0f;
            foreach (float v in x)
            {
                amax = MathF.Max(amax, MathF.Abs(v));
            }
            float d = amax / 127f;
            float id = d != 0f ? 1f / d : 0f;
            BinaryPrimitives.WriteUInt16LittleEndian(y, BitConverter.HalfToUInt16Bits((Half)d));
            for (int j = 0; j < Qk; j++)
            {
                // roundf rounds halves away from zero; the quantizer uses the f32 scale, not the stored f16.
                y[2 + j] = (byte)(sbyte)MathF.Round(x[j] * id, MidpointRounding.AwayFromZero);
            }
        }
    }

    /// <summary>Expands Q8_0 blocks in <paramref name="source"/> into <paramref name="destination"/>.</summary>
    public static void Dequantize(ReadOnlySpan<byte> source, Span<float> destination)
    {
        int blocks = CheckSizes(destination.Length, source.Length);
        for (int b = 0; b < blocks; b++)
        {
            ReadOnlySpan<byte> x = source.Slice(b * GgmlTypeTraits.Q8_0BlockBytes, GgmlTypeTraits.Q8_0BlockBytes);
            float d = (float)BitConverter.UInt16BitsToHalf(BinaryPrimitives.ReadUInt16LittleEndian(x));
            Span<float> y = destination.Slice(b * Qk, Qk);
            for (int j = 0; j < Qk; j++)
            {
                y[j] = (sbyte)x[2 + j] * d;
            }
        }
    }

    private static int CheckSizes(int values, int bytes)
    {
        if (values % Qk != 0)
        {
            throw new ArgumentException($"Q8_0 needs a multiple of {Qk} values, got {values}.");
        }
        int blocks = values / Qk;
        if (bytes != blocks * GgmlTypeTraits.Q8_0BlockBytes)
        {
            throw new ArgumentException(
                $"Q8_0: {values} values take {blocks * GgmlTypeTraits.Q8_0BlockBytes} bytes, the buffer has {bytes}.");
        }
        return blocks;
    }
}
