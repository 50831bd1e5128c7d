using System.Buffers.Binary;

namespace PeftHost.Formats.Gguf;

/// <summary>
/// GGML's Q4_0 blocks, bit for bit as llama.cpp's quantize_row_q4_0_ref / dequantize_row_q4_0:
/// per 32 values, <c>d = max / -8</c> where max is the value of largest magnitude (sign kept), stored
/// as f16; <c>q = min(15, (int8)(x / d + 8.5))</c>; byte j holds element j in its low nibble and
/// element j + 16 in its high nibble; <c>x = (q - 8) * d</c>.
/// </summary>
public static class Q4_0Codec
{
    private const int Qk = GgmlTypeTraits.QuantBlockSize;

    /// <summary>Quantizes <paramref name="source"/> (a multiple of 32 values) into <paramref name="destination"/>.</summary>
    public static void Quantize(ReadOnlySpan<float> source, Span<byte> destination)
    {
        int blocks = CheckSizes(source.Length, destination.Length);
        for (int b = 0; b < blocks; b++)
        {
            ReadOnlySpan<float> x = source.Slice(b * Qk, Qk);
            Span<byte> y = destination.Slice(b * GgmlTypeTraits.Q4_0BlockBytes, GgmlTypeTraits.Q4_0BlockBytes);
            float amax = 0f;
            float max = 0f;
            foreach (float v in x)
            {
                // Strictly greater: the first value of largest magnitude wins, as in ggml.
                if (amax < MathF.Abs(v))
                {
                    amax = MathF.Abs(v);
                    max = v;
                }
            }
            float d = max / -8f;
            float id = d != 0f ? 1f / d : 0f;
            BinaryPrimitives.WriteUInt16LittleEndian(y, BitConverter.HalfToUInt16Bits((Half)d));
            for (int j = 0; j < Qk / 2; j++)
            {
                int lo = Math.Min(15, (int)(sbyte)(x[j] * id + 8.5f));
                int hi = Math.Min(15, (int)(sbyte)(x[j + Qk / 2] * id + 8.5f));
                y[2 + j] = (byte)(lo | (hi << 4));
            }
        }
    }

    /// <summary>Expands Q4_0 blocks in <paramref name="source"/> into <paramref name="destination"/>.</summary>
    public static void Dequantize(ReadOnlySpan<byte> source, Span<float> destination)
    {
        int blocks = CheckSizes(destination.Length, source.Length);
        for (int b = 0; b < blocks; b++)
        {
            ReadOnlySpan<byte> x = source.Slice(b * GgmlTypeTraits.Q4_0BlockBytes, GgmlTypeTraits.Q4_0BlockBytes);
            float d = (float)BitConverter.UInt16BitsToHalf(BinaryPrimitives.ReadUInt16LittleEndian(x));
            Span<float> y = destination.Slice(b * Qk, Qk);
            for (int j = 0; j < Qk / 2; j++)
            {
                y[j] = ((x[2 + j] & 0x0F) - 8) * d;
                y[j + Qk / 2] = ((x[2 + j] >> 4) - 8) * d;
            }
        }
    }

    private static int CheckSizes(int values, int bytes)
    {
        if (values % Qk != 0)
        {
            throw new ArgumentException($"Q4_0 needs a multiple of {Qk} values, got {values}.");
        }
        int blocks = values / Qk;
        if (bytes != blocks * GgmlTypeTraits.Q4_0BlockBytes)
        {
            throw new ArgumentException(
                $"Q4_0: {values} values take {blocks * GgmlTypeTraits.Q4_0BlockBytes} bytes, the buffer has {bytes}.");
        }
        return blocks;
    }
}
