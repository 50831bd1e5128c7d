using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace PeftHost.Formats.Gguf;

/// <summary>Converts float32 values to and from any supported GGML type's bytes.</summary>
public static class GgmlQuantization
{
    /// <summary>Encodes <paramref name="values"/> as <paramref name="type"/> (a whole number of blocks).</summary>
    public static byte[] Quantize(GgmlType type, ReadOnlySpan<float> values)
    {
        byte[] bytes = new byte[GgmlTypeTraits.ByteCount(type, values.Length)];
        Quantize(type, values, bytes);
        return bytes;
    }

    /// <summary>Encodes <paramref name="values"/> as <paramref name="type"/> into <paramref name="destination"/>.</summary>
    public static void Quantize(GgmlType type, ReadOnlySpan<float> values, Span<byte> destination)
    {
        long needed = GgmlTypeTraits.ByteCount(type, values.Length);
        if (destination.Length != needed)
        {
            throw new ArgumentException($"{type}: {values.Length} values take {needed} bytes, the buffer has {destination.Length}.");
        }
        switch (type)
        {
            case GgmlType.F32:
                for (int i = 0; i < values.Length; i++)
                {
                    BinaryPrimitives.WriteSingleLittleEndian(destination[(i * 4)..], values[i]);
                }
                break;
            case GgmlType.F16:
                for (int i = 0; i < values.Length; i++)
                {
                    BinaryPrimitives.WriteUInt16LittleEndian(destination[(i * 2)..], BitConverter.HalfToUInt16Bits((Half)values[i]));
                }
                break;
            case GgmlType.Q4_0:
                Q4_0Codec.Quantize(values, destination);
                break;
            case GgmlType.Q8_0:
                Q8_0Codec.Quantize(values, destination);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(type), type, "Unsupported GGML type.");
        }
    }

    /// <summary>Decodes <paramref name="bytes"/> of <paramref name="type"/> to float32 values.</summary>
    public static float[] Dequantize(GgmlType type, ReadOnlySpan<byte> bytes)
    {
        int block = GgmlTypeTraits.BlockSize(type);
        int blockBytes = GgmlTypeTraits.BlockBytes(type);
        if (bytes.Length % blockBytes != 0)
        {
            throw new ArgumentException($"{type}: {bytes.Length} bytes are not a whole number of {blockBytes}-byte blocks.");
        }
        float[] values = new float[bytes.Length / blockBytes * block];
        Dequantize(type, bytes, values);
        return values;
    }

    /// <summary>Decodes <paramref name="bytes"/> of <paramref name="type"/> into <paramref name="destination"/>.</summary>
    public static void Dequantize(GgmlType type, ReadOnlySpan<byte> bytes, Span<float> destination)
    {
        long needed = GgmlTypeTraits.ByteCount(type, destination.Length);
        if (bytes.Length != needed)
        {
            throw new ArgumentException($"{type}: {destination.Length} values take {needed} bytes, the buffer has {bytes.Length}.");
        }
        switch (type)
        {
            case GgmlType.F32:
                if (BitConverter.IsLittleEndian)
                {
                    MemoryMarshal.Cast<byte, float>(bytes).CopyTo(destination);
                }
                else
                {
                    for (int i = 0; i < destination.Length; i++)
                    {
                        destination[i] = BinaryPrimitives.ReadSingleLittleEndian(bytes[(i * 4)..]);
                    }
                }
                break;
            case GgmlType.F16:
                for (int i = 0; i < destination.Length; i++)
                {
                    destination[i] = (float)BitConverter.UInt16BitsToHalf(BinaryPrimitives.ReadUInt16LittleEndian(bytes[(i * 2)..]));
                }
                break;
            case GgmlType.Q4_0:
                Q4_0Codec.Dequantize(bytes, destination);
                break;
            case GgmlType.Q8_0:
                Q8_0Codec.Dequantize(bytes, destination);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(type), type, "Unsupported GGML type.");
        }
    }
}
