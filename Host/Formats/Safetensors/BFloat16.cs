namespace PeftHost.Formats.Safetensors;

/// <summary>bfloat16 ⇄ float32 bit conversions (the BCL has <see cref="Half"/> but no bfloat16).</summary>
public static class BFloat16
{
    /// <summary>The bfloat16 bits nearest to <paramref name="value"/> (round to nearest even, NaN kept NaN).</summary>
    public static ushort FromSingle(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        if (float.IsNaN(value)) return (ushort)((bits >> 16) | 0x40); // keep it a quiet NaN after truncation
        uint rounding = 0x7FFF + ((bits >> 16) & 1);
        return (ushort)((bits + rounding) >> 16);
    }

    /// <summary>The float32 value of bfloat16 bits (exact).</summary>
    public static float ToSingle(ushort bits) => BitConverter.UInt32BitsToSingle((uint)bits << 16);
}
