namespace PeftHost.Formats.BitsAndBytes;

/// <summary>bitsandbytes' 4-bit data types (<c>bnb_4bit_quant_type</c>).</summary>
public enum FourBitType
{
    /// <summary>NormalFloat 4 (<c>"nf4"</c>): 16 quantiles of a standard normal, scaled to [-1, 1] (QLoRA).</summary>
    Nf4,

    /// <summary>FP4 (<c>"fp4"</c>): a 1-2-1 sign/exponent/mantissa float with bias 3, scaled by 1/12.</summary>
    Fp4,
}

/// <summary>Names of <see cref="FourBitType"/> as bitsandbytes and transformers spell them.</summary>
public static class FourBitTypeNames
{
    /// <summary>"nf4" or "fp4".</summary>
    public static string Name(this FourBitType type) => type switch
    {
        FourBitType.Nf4 => "nf4",
        FourBitType.Fp4 => "fp4",
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, null),
    };

    /// <summary>Parses "nf4" or "fp4" (exactly, as bitsandbytes compares them).</summary>
    /// <exception cref="FormatException">Any other text; the message names <paramref name="where"/>.</exception>
    public static FourBitType Parse(string text, string where) => text switch
    {
        "nf4" => FourBitType.Nf4,
        "fp4" => FourBitType.Fp4,
        _ => throw new FormatException($"{where}: unknown 4-bit quant_type '{text}' (bitsandbytes knows 'nf4' and 'fp4')."),
    };
}
