using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;
using System.Text.Json;

namespace PeftHost.Formats.Safetensors;

/// <summary>
/// A safetensors file opened read-only through a memory map: the header is parsed and checked
/// when the file opens, tensor bytes are only touched when a tensor is read. Spans returned by
/// <see cref="GetBytes"/> are valid until the file is disposed.
/// </summary>
/// <remarks>
/// Layout: u64 little-endian header length N, N bytes of UTF-8 JSON
/// (<c>{"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}</c>),
/// then the data section; offsets are relative to the data section. Every inconsistency is an
/// <see cref="InvalidDataException"/> naming the file and, where there is one, the tensor.
/// </remarks>
public sealed unsafe class SafetensorsFile : IDisposable
{
    /// <summary>Largest header accepted (the official library's limit is the same order).</summary>
    public const long MaxHeaderBytes = 100L * 1024 * 1024;

    private readonly MemoryMappedFile? _map;
    private readonly MemoryMappedViewAccessor? _view;
    private readonly byte* _file;
    private readonly long _dataStart;
    private readonly Dictionary<string, SafetensorsTensorInfo> _byName;
    private bool _disposed;

    private SafetensorsFile(string path, MemoryMappedFile map, MemoryMappedViewAccessor view, byte* file, long dataStart, long dataLength,
        List<SafetensorsTensorInfo> tensors, Dictionary<string, string> metadata)
    {
        Path = path;
        _map = map;
        _view = view;
        _file = file;
        _dataStart = dataStart;
        DataLength = dataLength;
        Tensors = tensors;
        _byName = tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
        Metadata = metadata;
    }

    /// <summary>The file's path.</summary>
    public string Path { get; }

    /// <summary>The tensors, in the order their data appears in the file.</summary>
    public IReadOnlyList<SafetensorsTensorInfo> Tensors { get; }

    /// <summary>The header's <c>__metadata__</c> (string to string; empty when absent).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Bytes in the data section.</summary>
    public long DataLength { get; }

    /// <summary>Whether the file holds a tensor of that name.</summary>
    public bool Contains(string name) => _byName.ContainsKey(name);

    /// <summary>A tensor's header entry.</summary>
    /// <exception cref="KeyNotFoundException">No tensor of that name; the message names the file.</exception>
    public SafetensorsTensorInfo Info(string name) =>
        _byName.TryGetValue(name, out SafetensorsTensorInfo? info) ? info : throw new KeyNotFoundException($"No tensor '{name}' in '{Path}'.");

    /// <summary>Opens and validates a file.</summary>
    /// <exception cref="InvalidDataException">The file is truncated, its header is malformed or inconsistent.</exception>
    public static SafetensorsFile Open(string path)
    {
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete);
        long length = stream.Length;
        if (length < 8)
        {
            stream.Dispose();
            throw Invalid(path, $"the file is {length} bytes, shorter than the 8-byte header length: truncated or not a safetensors file");
        }
        MemoryMappedFile map = MemoryMappedFile.CreateFromFile(stream, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false);
        MemoryMappedViewAccessor? view = null;
        bool acquired = false;
        try
        {
            view = map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            byte* pointer = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref pointer);
            acquired = true;
            pointer += view.PointerOffset;

            ulong headerLength = System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(new ReadOnlySpan<byte>(pointer, 8));
            if (headerLength > MaxHeaderBytes)
                throw Invalid(path, $"header length {headerLength} bytes exceeds the limit of {MaxHeaderBytes / (1024 * 1024)} MB: corrupt or not a safetensors file");
            if (8 + (long)headerLength > length)
                throw Invalid(path, $"header length {headerLength} bytes runs past the end of the file ({length} bytes): truncated");
            long dataStart = 8 + (long)headerLength;
            long dataLength = length - dataStart;
            var header = new ReadOnlySpan<byte>(pointer + 8, (int)headerLength);
            (List<SafetensorsTensorInfo> tensors, Dictionary<string, string> metadata) = ParseHeader(path, header, dataLength);
            return new SafetensorsFile(path, map, view, pointer, dataStart, dataLength, tensors, metadata);
        }
        catch
        {
            if (acquired) view!.SafeMemoryMappedViewHandle.ReleasePointer();
            view?.Dispose();
            map.Dispose();
            throw;
        }
    }

    /// <summary>A tensor's raw bytes (little-endian, row-major), valid while the file is open.</summary>
    /// <exception cref="InvalidOperationException">The tensor is 2 GB or more: use <see cref="CopyTo(string, nint, long)"/>.</exception>
    public ReadOnlySpan<byte> GetBytes(string name)
    {
        SafetensorsTensorInfo info = Info(name);
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (info.ByteLength > int.MaxValue)
            throw new InvalidOperationException($"Tensor '{name}' in '{Path}' is {info.ByteLength} bytes, too large for a span: copy it with CopyTo(name, pointer, length).");
        return new ReadOnlySpan<byte>(_file + _dataStart + info.Begin, (int)info.ByteLength);
    }

    /// <summary>Copies a tensor's raw bytes to native memory of at least its byte length (any size).</summary>
    public void CopyTo(string name, nint destination, long destinationBytes)
    {
        SafetensorsTensorInfo info = Info(name);
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (destinationBytes < info.ByteLength)
            throw new ArgumentException($"Tensor '{name}' is {info.ByteLength} bytes; the destination holds {destinationBytes}.", nameof(destinationBytes));
        Buffer.MemoryCopy(_file + _dataStart + info.Begin, (void*)destination, destinationBytes, info.ByteLength);
    }

    /// <summary>Copies a tensor's raw bytes into <paramref name="destination"/>.</summary>
    public void CopyTo(string name, Span<byte> destination) => GetBytes(name).CopyTo(destination);

    /// <summary>A floating-point tensor's values as float32 (F32, F16, BF16, F64), row-major.</summary>
    public float[] ReadSingles(string name)
    {
        SafetensorsTensorInfo info = Info(name);
        ReadOnlySpan<byte> bytes = GetBytes(name);
        var result = new float[info.ElementCount];
        switch (info.DType)
        {
            case SafetensorsDType.F32: MemoryMarshal.Cast<byte, float>(bytes).CopyTo(result); break;
            case SafetensorsDType.F16:
                ReadOnlySpan<Half> halves = MemoryMarshal.Cast<byte, Half>(bytes);
                for (int i = 0; i < result.Length; i++) result[i] = (float)halves[i];
                break;
            case SafetensorsDType.BF16:
                ReadOnlySpan<ushort> b16 = MemoryMarshal.Cast<byte, ushort>(bytes);
                for (int i = 0; i < result.Length; i++) result[i] = BFloat16.ToSingle(b16[i]);
                break;
            case SafetensorsDType.F64:
                ReadOnlySpan<double> doubles = MemoryMarshal.Cast<byte, double>(bytes);
                for (int i = 0; i < result.Length; i++) result[i] = (float)doubles[i];
                break;
            default: throw new InvalidOperationException($"Tensor '{name}' in '{Path}' is {info.DType.Name()}, not a floating-point type.");
        }
        return result;
    }

    /// <summary>An integer or boolean tensor's values as int64 (I64, I32, I16, I8, U8, BOOL), row-major.</summary>
    public long[] ReadInt64s(string name)
    {
        SafetensorsTensorInfo info = Info(name);
        ReadOnlySpan<byte> bytes = GetBytes(name);
        var result = new long[info.ElementCount];
        for (int i = 0; i < result.Length; i++)
        {
            result[i] = info.DType switch
            {
                SafetensorsDType.I64 => MemoryMarshal.Cast<byte, long>(bytes)[i],
                SafetensorsDType.I32 => MemoryMarshal.Cast<byte, int>(bytes)[i],
                SafetensorsDType.I16 => MemoryMarshal.Cast<byte, short>(bytes)[i],
                SafetensorsDType.I8 => (sbyte)bytes[i],
                SafetensorsDType.U8 or SafetensorsDType.Bool => bytes[i],
                _ => throw new InvalidOperationException($"Tensor '{name}' in '{Path}' is {info.DType.Name()}, not an integer type."),
            };
        }
        return result;
    }

    /// <summary>Unmaps the file.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _view?.SafeMemoryMappedViewHandle.ReleasePointer();
        _view?.Dispose();
        _map?.Dispose();
    }

    private static (List<SafetensorsTensorInfo>, Dictionary<string, string>) ParseHeader(string path, ReadOnlySpan<byte> header, long dataLength)
    {
        // JsonDocument checks UTF-8 only when a string is read: refuse a header that is not UTF-8 here.
        if (!System.Text.Unicode.Utf8.IsValid(header)) throw Invalid(path, "the header is not valid UTF-8 JSON");
        JsonDocument doc;
        try
        {
            var reader = new Utf8JsonReader(header, new JsonReaderOptions { MaxDepth = 16 });
            doc = JsonDocument.ParseValue(ref reader);
        }
        catch (JsonException e)
        {
            throw Invalid(path, $"the header is not valid JSON ({e.Message})");
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw Invalid(path, "the header is not a JSON object");
            var tensors = new List<SafetensorsTensorInfo>();
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (JsonProperty p in doc.RootElement.EnumerateObject())
            {
                if (!seen.Add(p.Name)) throw Invalid(path, $"the header lists '{p.Name}' twice");
                if (p.Name == "__metadata__")
                {
                    if (p.Value.ValueKind != JsonValueKind.Object) throw Invalid(path, "__metadata__ is not an object");
                    foreach (JsonProperty m in p.Value.EnumerateObject())
                        metadata[m.Name] = m.Value.ValueKind == JsonValueKind.String ? m.Value.GetString()! : throw Invalid(path, $"__metadata__ value '{m.Name}' is not a string");
                    continue;
                }
                tensors.Add(ParseEntry(path, p.Name, p.Value, dataLength));
            }

            // Tensors must tile the data section: sorted by offset, each starts where the previous ended.
            tensors.Sort((a, b) => a.Begin != b.Begin ? a.Begin.CompareTo(b.Begin) : a.End.CompareTo(b.End));
            long expected = 0;
            SafetensorsTensorInfo? previous = null;
            foreach (SafetensorsTensorInfo t in tensors)
            {
                if (t.Begin < expected)
                    throw Invalid(path, $"tensor '{t.Name}' (data_offsets [{t.Begin}, {t.End}]) overlaps tensor '{previous!.Name}' (data_offsets [{previous.Begin}, {previous.End}])");
                if (t.Begin > expected)
                    throw Invalid(path, $"bytes {expected}..{t.Begin} of the data section belong to no tensor (before tensor '{t.Name}'): the header's offsets are wrong");
                expected = t.End;
                previous = t;
            }
            if (expected != dataLength)
                throw Invalid(path, $"the data section is {dataLength} bytes but the tensors cover {expected}" + (previous is null ? "" : $" (last tensor '{previous.Name}')") + ": trailing bytes or a wrong header");
            return (tensors, metadata);
        }
    }

    private static SafetensorsTensorInfo ParseEntry(string path, string name, JsonElement e, long dataLength)
    {
        if (e.ValueKind != JsonValueKind.Object) throw Invalid(path, $"tensor '{name}': the entry is not an object");
        if (!e.TryGetProperty("dtype", out JsonElement dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String)
            throw Invalid(path, $"tensor '{name}': no dtype string");
        string dtypeName = dtypeElement.GetString()!;
        if (!SafetensorsDTypes.TryParse(dtypeName, out SafetensorsDType dtype))
            throw Invalid(path, $"tensor '{name}': unknown dtype '{dtypeName}' (known: {string.Join(", ", Enum.GetValues<SafetensorsDType>().Select(d => d.Name()))})");
        if (!e.TryGetProperty("shape", out JsonElement shapeElement) || shapeElement.ValueKind != JsonValueKind.Array)
            throw Invalid(path, $"tensor '{name}': no shape array");
        var shape = new long[shapeElement.GetArrayLength()];
        int i = 0;
        foreach (JsonElement d in shapeElement.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out long v) || v < 0)
                throw Invalid(path, $"tensor '{name}': shape {shapeElement.GetRawText()} has an entry that is not a non-negative integer");
            shape[i++] = v;
        }
        if (!e.TryGetProperty("data_offsets", out JsonElement offsets) || offsets.ValueKind != JsonValueKind.Array || offsets.GetArrayLength() != 2)
            throw Invalid(path, $"tensor '{name}': data_offsets is not a [begin, end] array");
        if (!offsets[0].TryGetInt64(out long begin) || !offsets[1].TryGetInt64(out long end) || begin < 0 || end < begin)
            throw Invalid(path, $"tensor '{name}': data_offsets {offsets.GetRawText()} are not 0 <= begin <= end");
        long needed;
        try
        {
            needed = checked(shape.Aggregate(1L, (a, d) => checked(a * d)) * dtype.Size());
        }
        catch (OverflowException)
        {
            throw Invalid(path, $"tensor '{name}': shape {shapeElement.GetRawText()} is too large");
        }
        if (end - begin != needed)
            throw Invalid(path, $"tensor '{name}': shape {shapeElement.GetRawText()} of {dtype.Name()} needs {needed} bytes but data_offsets [{begin}, {end}] give {end - begin}");
        if (end > dataLength)
            throw Invalid(path, $"tensor '{name}': data_offsets [{begin}, {end}] run past the end of the data section ({dataLength} bytes): the file is truncated or the header is wrong");
        return new SafetensorsTensorInfo(name, dtype, shape, begin, end);
    }

    private static InvalidDataException Invalid(string path, string what) => new($"Invalid safetensors file '{path}': {what}.");
}
