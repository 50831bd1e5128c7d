using System.Runtime.InteropServices;

namespace PeftHost.Formats.Safetensors;

/// <summary>
/// One tensor to write: its header entry and a callback that writes exactly
/// <see cref="ByteLength"/> bytes of little-endian row-major data (so large tensors can stream
/// from native memory without a managed copy).
/// </summary>
public sealed class SafetensorsWriteTensor
{
    /// <summary>A tensor whose data is written by <paramref name="writeData"/>.</summary>
    public SafetensorsWriteTensor(string name, SafetensorsDType dtype, long[] shape, Action<Stream> writeData)
    {
        Name = name;
        DType = dtype;
        Shape = shape;
        WriteData = writeData;
        if (shape.Any(d => d < 0)) throw new ArgumentException($"Tensor '{name}': negative dimension in [{string.Join(", ", shape)}].", nameof(shape));
        ByteLength = checked(shape.Aggregate(1L, (a, d) => checked(a * d)) * dtype.Size());
    }

    /// <summary>The key.</summary>
    public string Name { get; }

    /// <summary>Element type.</summary>
    public SafetensorsDType DType { get; }

    /// <summary>Dimensions.</summary>
    public long[] Shape { get; }

    /// <summary>Bytes of data the shape and dtype call for.</summary>
    public long ByteLength { get; }

    /// <summary>Writes the data.</summary>
    public Action<Stream> WriteData { get; }

    /// <summary>A tensor from raw bytes (checked against the shape).</summary>
    public static SafetensorsWriteTensor FromBytes(string name, SafetensorsDType dtype, long[] shape, ReadOnlyMemory<byte> data)
    {
        var t = new SafetensorsWriteTensor(name, dtype, shape, s => s.Write(data.Span));
        if (t.ByteLength != data.Length)
            throw new ArgumentException($"Tensor '{name}': shape [{string.Join(", ", shape)}] of {dtype.Name()} needs {t.ByteLength} bytes, got {data.Length}.", nameof(data));
        return t;
    }

    /// <summary>A float32 tensor.</summary>
    public static SafetensorsWriteTensor FromSingles(string name, long[] shape, float[] values) =>
        FromBytes(name, SafetensorsDType.F32, shape, MemoryMarshal.AsBytes(values.AsSpan()).ToArray());

    /// <summary>A tensor of float values stored as F16 or BF16 (rounded to nearest even) or F32.</summary>
    public static SafetensorsWriteTensor FromSingles(string name, long[] shape, float[] values, SafetensorsDType storeAs)
    {
        byte[] bytes = storeAs switch
        {
            SafetensorsDType.F32 => MemoryMarshal.AsBytes(values.AsSpan()).ToArray(),
            SafetensorsDType.F16 => MemoryMarshal.AsBytes(values.Select(v => (Half)v).ToArray().AsSpan()).ToArray(),
            SafetensorsDType.BF16 => MemoryMarshal.AsBytes(values.Select(BFloat16.FromSingle).ToArray().AsSpan()).ToArray(),
            SafetensorsDType.F64 => MemoryMarshal.AsBytes(values.Select(v => (double)v).ToArray().AsSpan()).ToArray(),
            _ => throw new ArgumentException($"Tensor '{name}': {storeAs.Name()} is not a floating-point type.", nameof(storeAs)),
        };
        return FromBytes(name, storeAs, shape, bytes);
    }

    /// <summary>An int64 tensor.</summary>
    public static SafetensorsWriteTensor FromInt64s(string name, long[] shape, long[] values) =>
        FromBytes(name, SafetensorsDType.I64, shape, MemoryMarshal.AsBytes(values.AsSpan()).ToArray());
}
