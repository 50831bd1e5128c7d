namespace PeftHost.Formats.Gguf;

/// <summary>
/// One tensor's entry in a GGUF header. <see cref="Dimensions"/> is in GGML order: element 0 is the
/// fastest-varying (the columns of a row-major matrix), so a [rows, cols] matrix has dims [cols, rows].
/// </summary>
/// <param name="Name">The tensor name (e.g. <c>blk.0.attn_q.weight</c>).</param>
/// <param name="Dimensions">Sizes, innermost first.</param>
/// <param name="Type">The element type.</param>
/// <param name="Offset">Byte offset of the data from the start of the data section.</param>
public sealed record GgufTensorInfo(string Name, IReadOnlyList<ulong> Dimensions, GgmlType Type, ulong Offset)
{
    /// <summary>The number of elements.</summary>
    public ulong ElementCount => Dimensions.Aggregate(1UL, (a, d) => checked(a * d));

    /// <summary>The number of bytes of data.</summary>
    public ulong ByteCount => ElementCount / (ulong)GgmlTypeTraits.BlockSize(Type) * (ulong)GgmlTypeTraits.BlockBytes(Type);

    /// <summary>Rows of the tensor seen as a matrix: the product of all dimensions but the first.</summary>
    public ulong Rows => Dimensions.Count == 0 ? 1 : ElementCount / Dimensions[0];

    /// <summary>Columns of the tensor seen as a matrix: the first dimension.</summary>
    public ulong Columns => Dimensions.Count == 0 ? 1 : Dimensions[0];
}
