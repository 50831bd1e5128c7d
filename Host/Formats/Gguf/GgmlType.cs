namespace PeftHost.Formats.Gguf;

/// <summary>The GGML tensor element types this project reads and writes (ids as in ggml.h).</summary>
public enum GgmlType : uint
{
    /// <summary>32-bit IEEE float.</summary>
    F32 = 0,
    /// <summary>16-bit IEEE half float.</summary>
    F16 = 1,
    /// <summary>Blocks of 32: f16 scale <c>d</c>, 16 bytes of 4-bit values (x = (q - 8) * d).</summary>
    Q4_0 = 2,
    /// <summary>Blocks of 32: f16 scale <c>d</c>, 32 signed bytes (x = q * d).</summary>
    Q8_0 = 8,
}
