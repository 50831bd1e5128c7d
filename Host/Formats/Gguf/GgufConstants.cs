namespace PeftHost.Formats.Gguf;

/// <summary>Fixed numbers of the GGUF format.</summary>
public static class GgufConstants
{
    /// <summary>"GGUF" read as a little-endian 32-bit integer.</summary>
    public const uint Magic = 0x46554747;

    /// <summary>The version this project writes.</summary>
    public const uint Version = 3;

    /// <summary>Data alignment when <c>general.alignment</c> is absent.</summary>
    public const uint DefaultAlignment = 32;

    /// <summary>The metadata key that overrides the alignment.</summary>
    public const string AlignmentKey = "general.alignment";

    /// <summary>GGML_MAX_DIMS: the most dimensions a tensor may have.</summary>
    public const int MaxDimensions = 4;
}
