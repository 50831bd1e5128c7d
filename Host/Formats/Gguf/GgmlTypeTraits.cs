namespace PeftHost.Formats.Gguf;

/// <summary>Block sizes and byte sizes of the supported GGML types (ggml's type_traits).</summary>
public static class GgmlTypeTraits
{
    /// <summary>Elements per block of the block-quantized types (QK4_0 and QK8_0).</summary>
    public const int QuantBlockSize = 32;

    /// <summary>Bytes of one Q4_0 block: f16 scale and 16 bytes of nibbles.</summary>
    public const int Q4_0BlockBytes = 2 + QuantBlockSize / 2;

    /// <summary>Bytes of one Q8_0 block: f16 scale and 32 signed bytes.</summary>
    public const int Q8_0BlockBytes = 2 + QuantBlockSize;

    /// <summary>Whether <paramref name="id"/> is a type this project supports.</summary>
    public static bool IsSupported(uint id) =>
        id is (uint)GgmlType.F32 or (uint)GgmlType.F16 or (uint)GgmlType.Q4_0 or (uint)GgmlType.Q8_0;

    /// <summary>Elements per block: 1 for F32 and F16, 32 for Q4_0 and Q8_0.</summary>
    public static int BlockSize(GgmlType type) => type switch
    {
        GgmlType.F32 or GgmlType.F16 => 1,
        GgmlType.Q4_0 or GgmlType.Q8_0 => QuantBlockSize,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "Unsupported GGML type."),
    };

    /// <summary>Bytes per block.</summary>
    public static int BlockBytes(GgmlType type) => type switch
    {
        GgmlType.F32 => 4,
        GgmlType.F16 => 2,
        GgmlType.Q4_0 => Q4_0BlockBytes,
        GgmlType.Q8_0 => Q8_0BlockBytes,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "Unsupported GGML type."),
    };

    /// <summary>Bytes taken by <paramref name="elements"/> values; they must fill whole blocks.</summary>
    public static long ByteCount(GgmlType type, long elements)
    {
        int block = BlockSize(type);
        if (elements < 0 || elements % block != 0)
        {
            throw new ArgumentException(
                $"{type} stores whole blocks of {block} values; {elements} values do not fill whole blocks.",
                nameof(elements));
        }
        return elements / block * BlockBytes(type);
    }

    /// <summary>The name ggml prints for the type (<c>f32</c>, <c>q4_0</c>, ...).</summary>
    public static string Name(GgmlType type) => type switch
    {
        GgmlType.F32 => "f32",
        GgmlType.F16 => "f16",
        GgmlType.Q4_0 => "q4_0",
        GgmlType.Q8_0 => "q8_0",
        _ => $"type {(uint)type}",
    };
}
