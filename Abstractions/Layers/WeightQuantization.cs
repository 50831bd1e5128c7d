namespace PeftHost.Abstractions.Layers;

/// <summary>How a <see cref="QuantizedLinear"/> stores its weight (bitsandbytes' formats).</summary>
public enum WeightQuantization
{
    /// <summary>4-bit NormalFloat (bitsandbytes <c>nf4</c>): blocks of values scaled by their absmax, 16 normal quantiles.</summary>
    Nf4,

    /// <summary>4-bit float (bitsandbytes <c>fp4</c>): blocks scaled by their absmax, a 1-2-1 sign/exponent/mantissa code.</summary>
    Fp4,

    /// <summary>8-bit integers per row (bitsandbytes <c>Int8Params</c>): each row scaled by 127 over its absmax (<c>SCB</c>).</summary>
    Int8,
}
