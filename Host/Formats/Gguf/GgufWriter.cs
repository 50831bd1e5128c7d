using System.Text;

namespace PeftHost.Formats.Gguf;

/// <summary>
/// Builds a GGUF version 3 file: metadata in insertion order, tensor infos, padding to the
/// alignment, then each tensor's data at an aligned offset.
/// </summary>
public sealed class GgufWriter
{
    private readonly List<KeyValuePair<string, GgufValue>> _metadata = [];
    private readonly List<(GgufTensorInfo Info, ReadOnlyMemory<byte> Data)> _tensors = [];
    private readonly HashSet<string> _tensorNames = new(StringComparer.Ordinal);
    private ulong _nextOffset;

    /// <summary>Creates a writer; an alignment other than 32 is recorded as general.alignment.</summary>
    public GgufWriter(uint alignment = GgufConstants.DefaultAlignment)
    {
        if (alignment == 0 || !uint.IsPow2(alignment))
        {
            throw new ArgumentOutOfRangeException(nameof(alignment), alignment, "The alignment must be a power of two.");
        }
        Alignment = alignment;
        if (alignment != GgufConstants.DefaultAlignment)
        {
            SetMetadata(GgufConstants.AlignmentKey, GgufValue.FromUInt32(alignment));
        }
    }

    /// <summary>The data alignment.</summary>
    public uint Alignment { get; }

    /// <summary>Sets (or replaces, keeping its place) a metadata key.</summary>
    public void SetMetadata(string key, GgufValue value)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        ArgumentNullException.ThrowIfNull(value);
        if (key == GgufConstants.AlignmentKey && !(value.Type == GgufValueType.UInt32 && (uint)value.Value == Alignment))
        {
            throw new ArgumentException($"{key} is set by the writer's alignment ({Alignment}); create the writer with the alignment instead.");
        }
        int index = _metadata.FindIndex(kv => kv.Key == key);
        if (index >= 0)
        {
            _metadata[index] = new(key, value);
        }
        else
        {
            _metadata.Add(new(key, value));
        }
    }

    /// <summary>Adds a tensor whose bytes are already in <paramref name="type"/>'s GGML layout.</summary>
    /// <param name="name">Tensor name.</param>
    /// <param name="dimensions">Sizes in GGML order, innermost first ([cols, rows] for a row-major matrix).</param>
    /// <param name="type">Element type.</param>
    /// <param name="data">The encoded data; its length must match the dimensions.</param>
    public GgufTensorInfo AddTensor(string name, IReadOnlyList<ulong> dimensions, GgmlType type, ReadOnlyMemory<byte> data)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (!_tensorNames.Add(name))
        {
            throw new ArgumentException($"Tensor '{name}' was already added.", nameof(name));
        }
        if (dimensions.Count > GgufConstants.MaxDimensions || dimensions.Any(d => d == 0))
        {
            _tensorNames.Remove(name);
            throw new ArgumentException($"Tensor '{name}': 0 to {GgufConstants.MaxDimensions} dimensions, each at least 1; got [{string.Join(", ", dimensions)}].");
        }
        int block = GgmlTypeTraits.BlockSize(type);
        var info = new GgufTensorInfo(name, dimensions.ToArray(), type, _nextOffset);
        if ((dimensions.Count > 0 && dimensions[0] % (ulong)block != 0) || info.ElementCount % (ulong)block != 0)
        {
            _tensorNames.Remove(name);
            throw new ArgumentException($"Tensor '{name}': {GgmlTypeTraits.Name(type)} needs the first dimension to be a multiple of {block}; got [{string.Join(", ", dimensions)}].");
        }
        if ((ulong)data.Length != info.ByteCount)
        {
            _tensorNames.Remove(name);
            throw new ArgumentException($"Tensor '{name}': [{string.Join(", ", dimensions)}] of {GgmlTypeTraits.Name(type)} takes {info.ByteCount} bytes, got {data.Length}.");
        }
        _tensors.Add((info, data));
        _nextOffset = (ulong)GgufReader.AlignUp((long)(_nextOffset + info.ByteCount), Alignment);
        return info;
    }

    /// <summary>Adds a tensor from float32 values, encoding them as <paramref name="type"/>.</summary>
    public GgufTensorInfo AddTensor(string name, IReadOnlyList<ulong> dimensions, GgmlType type, ReadOnlySpan<float> values) =>
        AddTensor(name, dimensions, type, GgmlQuantization.Quantize(type, values));

    /// <summary>Writes the file to <paramref name="path"/> atomically (<see cref="AtomicFile"/>): a reader sees the old file or the whole new one.</summary>
    /// <exception cref="AtomicWriteException">An I/O error; the previous file, if any, is unchanged.</exception>
    public void Write(string path) => AtomicFile.Write(path, Write, 1 << 20);

    /// <summary>Writes the file to <paramref name="stream"/>.</summary>
    public void Write(Stream stream)
    {
        using var w = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true);
        long start = stream.CanSeek ? stream.Position : 0;
        long written = 0;
        w.Write(GgufConstants.Magic);
        w.Write(GgufConstants.Version);
        w.Write((ulong)_tensors.Count);
        w.Write((ulong)_metadata.Count);
        written += 24;
        foreach (KeyValuePair<string, GgufValue> kv in _metadata)
        {
            written += WriteString(w, kv.Key);
            w.Write((uint)kv.Value.Type);
            written += 4 + WriteValue(w, kv.Value);
        }
        foreach ((GgufTensorInfo info, _) in _tensors)
        {
            written += WriteString(w, info.Name);
            w.Write((uint)info.Dimensions.Count);
            foreach (ulong d in info.Dimensions)
            {
                w.Write(d);
            }
            w.Write((uint)info.Type);
            w.Write(info.Offset);
            written += 4 + 8L * info.Dimensions.Count + 4 + 8;
        }
        written += Pad(w, written);
        long dataStart = written;
        foreach ((GgufTensorInfo info, ReadOnlyMemory<byte> data) in _tensors)
        {
            // Offsets were assigned on add; padding keeps each tensor at its recorded offset.
            written += Pad(w, written - dataStart);
            w.Write(data.Span);
            written += data.Length;
        }
        written += Pad(w, written - dataStart);
        w.Flush();
        if (stream.CanSeek && stream.Position - start != written)
        {
            throw new InvalidOperationException($"GGUF writer wrote {stream.Position - start} bytes but counted {written}.");
        }
    }

    private long Pad(BinaryWriter w, long position)
    {
        long pad = GgufReader.AlignUp(position, Alignment) - position;
        for (long i = 0; i < pad; i++)
        {
            w.Write((byte)0);
        }
        return pad;
    }

    private static long WriteString(BinaryWriter w, string s)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(s);
        w.Write((ulong)bytes.Length);
        w.Write(bytes);
        return 8 + bytes.Length;
    }

    private static long WriteValue(BinaryWriter w, GgufValue value)
    {
        if (value.Type == GgufValueType.Array)
        {
            Array items = (Array)value.Value;
            w.Write((uint)value.ElementType);
            w.Write((ulong)items.Length);
            long n = 12;
            foreach (object? item in items)
            {
                n += value.ElementType == GgufValueType.Array
                    ? WriteNested(w, (GgufValue)item!)
                    : WriteScalar(w, value.ElementType, item!);
            }
            return n;
        }
        return WriteScalar(w, value.Type, value.Value);
    }

    // An element of an array of arrays is written as element type, count and items, with no tag of its own.
    private static long WriteNested(BinaryWriter w, GgufValue nested) => nested.Type == GgufValueType.Array
        ? WriteValue(w, nested)
        : throw new ArgumentException("An array of arrays must hold array values.");

    private static long WriteScalar(BinaryWriter w, GgufValueType type, object v)
    {
        switch (type)
        {
            case GgufValueType.UInt8: w.Write((byte)v); return 1;
            case GgufValueType.Int8: w.Write((sbyte)v); return 1;
            case GgufValueType.UInt16: w.Write((ushort)v); return 2;
            case GgufValueType.Int16: w.Write((short)v); return 2;
            case GgufValueType.UInt32: w.Write((uint)v); return 4;
            case GgufValueType.Int32: w.Write((int)v); return 4;
            case GgufValueType.Float32: w.Write((float)v); return 4;
            case GgufValueType.Bool: w.Write((bool)v ? (byte)1 : (byte)0); return 1;
            case GgufValueType.String: return WriteString(w, (string)v);
            case GgufValueType.UInt64: w.Write((ulong)v); return 8;
            case GgufValueType.Int64: w.Write((long)v); return 8;
            case GgufValueType.Float64: w.Write((double)v); return 8;
            default: throw new ArgumentOutOfRangeException(nameof(type), type, "Unknown GGUF value type.");
        }
    }
}
