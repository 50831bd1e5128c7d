namespace PeftHost.Formats.Safetensors;

/// <summary>The element types of the safetensors format (the header's <c>dtype</c> strings).</summary>
public enum SafetensorsDType
{
    /// <summary>"BOOL": one byte, 0 or 1.</summary>
    Bool,
    /// <summary>"U8".</summary>
    U8,
    /// <summary>"I8".</summary>
    I8,
    /// <summary>"I16".</summary>
    I16,
    /// <summary>"I32".</summary>
    I32,
    /// <summary>"I64".</summary>
    I64,
    /// <summary>"F16": IEEE half.</summary>
    F16,
    /// <summary>"BF16": bfloat16 (the top 16 bits of a float32).</summary>
    BF16,
    /// <summary>"F32".</summary>
    F32,
    /// <summary>"F64".</summary>
    F64,
}

/// <summary>Names and sizes of <see cref="SafetensorsDType"/>.</summary>
public static class SafetensorsDTypes
{
    /// <summary>Bytes per element.</summary>
    public static int Size(this SafetensorsDType dtype) => dtype switch
    {
        SafetensorsDType.Bool or SafetensorsDType.U8 or SafetensorsDType.I8 => 1,
        SafetensorsDType.I16 or SafetensorsDType.F16 or SafetensorsDType.BF16 => 2,
        SafetensorsDType.I32 or SafetensorsDType.F32 => 4,
        SafetensorsDType.I64 or SafetensorsDType.F64 => 8,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, null),
    };

    /// <summary>The header string ("F32", "BF16", ...).</summary>
    public static string Name(this SafetensorsDType dtype) => dtype switch
    {
        SafetensorsDType.Bool => "BOOL",
        SafetensorsDType.U8 => "U8",
        SafetensorsDType.I8 => "I8",
        SafetensorsDType.I16 => "I16",
        SafetensorsDType.I32 => "I32",
        SafetensorsDType.I64 => "I64",
        SafetensorsDType.F16 => "F16",
        SafetensorsDType.BF16 => "BF16",
        SafetensorsDType.F32 => "F32",
        SafetensorsDType.F64 => "F64",
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, null),
    };

    /// <summary>Parses a header dtype string; false for one this reader does not know.</summary>
    public static bool TryParse(string name, out SafetensorsDType dtype)
    {
        foreach (SafetensorsDType d in Enum.GetValues<SafetensorsDType>())
            if (d.Name() == name) { dtype = d; return true; }
        dtype = default;
        return false;
    }
}
