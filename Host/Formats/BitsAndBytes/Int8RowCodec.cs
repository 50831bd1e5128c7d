namespace PeftHost.Formats.BitsAndBytes;

/// <summary>
/// bitsandbytes' 8-bit weights (<c>nn.modules.Int8Params._quantize</c> with the default backend's
/// <c>int8_vectorwise_quant</c>, threshold 0): the weight is cast to float16, each row scaled by 127 over
/// its absmax and rounded half to even; <c>CB</c> holds the int8 values, <c>SCB</c> the float32 row
/// absmax. Decoding is <c>CB * SCB * (1/127)</c> in float32 (<c>int8_vectorwise_dequant</c>).
/// </summary>
/// <remarks>
/// torch evaluates <c>127.0 / row_stats</c> as <c>row_stats.reciprocal() * 127</c>, two float32 roundings;
/// so does this. An all-zero row (scale infinite, 0 * inf = NaN) gives zeros, as torch's cast does here.
/// </remarks>
public static class Int8RowCodec
{
    // bitsandbytes' 7.874015718698502e-3 (1/127), a Python float, multiplies the float32 tensor as float32.
    private const float InverseOf127 = (float)7.874015718698502e-3;

    /// <summary>Quantizes a row-major [rows, columns] weight into <paramref name="cb"/> and <paramref name="scb"/>.</summary>
    /// <exception cref="ArgumentException">Wrong buffer sizes, or a row whose float16 value is not finite.</exception>
    public static void Quantize(ReadOnlySpan<float> weight, int columns, Span<sbyte> cb, Span<float> scb)
    {
        int rows = CheckSizes(weight.Length, columns, cb.Length, scb.Length);
        Span<float> half = columns <= 16384 ? stackalloc float[columns] : new float[columns];
        for (int r = 0; r < rows; r++)
        {
            ReadOnlySpan<float> row = weight.Slice(r * columns, columns);
            float max = 0f;
            for (int c = 0; c < columns; c++)
            {
                half[c] = (float)(Half)row[c];
                float a = MathF.Abs(half[c]);
                if (!float.IsFinite(a))
                    throw new ArgumentException($"Row {r} has a value ({row[c]}) that is not finite in float16, which 8-bit quantization casts to first.");
                if (a > max) max = a;
            }
            scb[r] = max;
            float scale = 1f / max * 127f;
            for (int c = 0; c < columns; c++)
            {
                float q = MathF.Round(half[c] * scale, MidpointRounding.ToEven);
                cb[r * columns + c] = float.IsNaN(q) ? (sbyte)0 : (sbyte)q;
            }
        }
    }

    /// <summary>Decodes <paramref name="cb"/> and <paramref name="scb"/> into a row-major weight.</summary>
    /// <exception cref="ArgumentException">The buffer sizes do not fit each other.</exception>
    public static void Dequantize(ReadOnlySpan<sbyte> cb, ReadOnlySpan<float> scb, int columns, Span<float> weight)
    {
        int rows = CheckSizes(weight.Length, columns, cb.Length, scb.Length);
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < columns; c++)
                weight[r * columns + c] = cb[r * columns + c] * scb[r] * InverseOf127;
    }

    private static int CheckSizes(int values, int columns, int cbLength, int scbLength)
    {
        if (columns <= 0 || values % columns != 0)
            throw new ArgumentException($"{values} values are not whole rows of {columns} columns.");
        int rows = values / columns;
        if (cbLength != values) throw new ArgumentException($"CB must hold {values} values, the buffer has {cbLength}.");
        if (scbLength != rows) throw new ArgumentException($"SCB must hold {rows} row scales, the buffer has {scbLength}.");
        return rows;
    }
}
