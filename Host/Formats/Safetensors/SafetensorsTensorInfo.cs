namespace PeftHost.Formats.Safetensors;

/// <summary>One tensor's header entry: where its bytes are, relative to the start of the data section.</summary>
/// <param name="Name">The tensor's key.</param>
/// <param name="DType">Element type.</param>
/// <param name="Shape">Dimensions (empty for a scalar).</param>
/// <param name="Begin">First byte, relative to the data section.</param>
/// <param name="End">One past the last byte, relative to the data section.</param>
public sealed record SafetensorsTensorInfo(string Name, SafetensorsDType DType, long[] Shape, long Begin, long End)
{
    /// <summary>Number of elements (1 for a scalar).</summary>
    public long ElementCount => Shape.Aggregate(1L, (a, d) => checked(a * d));

    /// <summary>Bytes of data.</summary>
    public long ByteLength => End - Begin;

    /// <summary>The shape as text, e.g. [64, 128].</summary>
    public string ShapeText => "[" + string.Join(", ", Shape) + "]";
}
