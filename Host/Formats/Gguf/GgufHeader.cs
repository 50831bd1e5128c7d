namespace PeftHost.Formats.Gguf;

/// <summary>The parsed header of a GGUF file.</summary>
/// <param name="Version">The GGUF version (2 or 3).</param>
/// <param name="Metadata">Key/value pairs in file order.</param>
/// <param name="Tensors">Tensor infos in file order.</param>
/// <param name="Alignment">The data alignment (general.alignment, or 32).</param>
/// <param name="DataOffset">Absolute byte offset of the data section.</param>
internal sealed record GgufHeader(
    uint Version,
    IReadOnlyList<KeyValuePair<string, GgufValue>> Metadata,
    IReadOnlyList<GgufTensorInfo> Tensors,
    uint Alignment,
    long DataOffset);
