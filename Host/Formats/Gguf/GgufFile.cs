namespace PeftHost.Formats.Gguf;

/// <summary>
/// An open GGUF file (version 2 or 3, little-endian): its metadata and tensor infos are read and
/// checked on open; tensor data is read on demand.
/// </summary>
public sealed class GgufFile : IDisposable
{
    private readonly Stream _stream;
    private readonly bool _ownsStream;
    private readonly Dictionary<string, GgufValue> _metadataByKey;
    private readonly Dictionary<string, GgufTensorInfo> _tensorsByName;

    private GgufFile(Stream stream, bool ownsStream, string fileName, GgufHeader header)
    {
        _stream = stream;
        _ownsStream = ownsStream;
        FileName = fileName;
        Version = header.Version;
        Metadata = header.Metadata;
        Tensors = header.Tensors;
        Alignment = header.Alignment;
        DataOffset = header.DataOffset;
        _metadataByKey = header.Metadata.ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
        _tensorsByName = header.Tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
    }

    /// <summary>The path, or the name given for a stream; used in error messages.</summary>
    public string FileName { get; }

    /// <summary>The GGUF version of the file.</summary>
    public uint Version { get; }

    /// <summary>Metadata in file order.</summary>
    public IReadOnlyList<KeyValuePair<string, GgufValue>> Metadata { get; }

    /// <summary>Tensor infos in file order.</summary>
    public IReadOnlyList<GgufTensorInfo> Tensors { get; }

    /// <summary>The alignment of tensor data.</summary>
    public uint Alignment { get; }

    /// <summary>The absolute byte offset of the data section.</summary>
    public long DataOffset { get; }

    /// <summary>Opens and checks the GGUF file at <paramref name="path"/>.</summary>
    public static GgufFile Open(string path)
    {
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        try
        {
            return Read(stream, path, ownsStream: true);
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    /// <summary>Reads a GGUF file from a seekable stream; <paramref name="fileName"/> names it in errors.</summary>
    public static GgufFile Read(Stream stream, string fileName, bool ownsStream = false)
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (!stream.CanSeek || !stream.CanRead)
        {
            throw new ArgumentException("GGUF reading needs a readable, seekable stream.", nameof(stream));
        }
        stream.Position = 0;
        GgufHeader header = new GgufReader(stream, fileName).ReadHeader();
        return new GgufFile(stream, ownsStream, fileName, header);
    }

    /// <summary>Whether the metadata has <paramref name="key"/>.</summary>
    public bool TryGetMetadata(string key, out GgufValue value) => _metadataByKey.TryGetValue(key, out value!);

    /// <summary>The metadata value of <paramref name="key"/>, or an error naming the file and key.</summary>
    public GgufValue GetMetadata(string key) => _metadataByKey.TryGetValue(key, out GgufValue? v)
        ? v
        : throw new GgufFormatException(FileName, null, $"metadata key '{key}' is missing.");

    /// <summary>The tensor info named <paramref name="name"/>, or an error naming the file and tensor.</summary>
    public GgufTensorInfo GetTensor(string name) => _tensorsByName.TryGetValue(name, out GgufTensorInfo? t)
        ? t
        : throw new GgufFormatException(FileName, name, "no such tensor in the file.");

    /// <summary>The raw bytes of a tensor in its GGML layout.</summary>
    public byte[] ReadTensorBytes(GgufTensorInfo tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (tensor.ByteCount > int.MaxValue)
        {
            throw new GgufFormatException(FileName, tensor.Name, $"{tensor.ByteCount} bytes do not fit in one array.");
        }
        byte[] data = new byte[tensor.ByteCount];
        _stream.Position = DataOffset + (long)tensor.Offset;
        int read = 0;
        while (read < data.Length)
        {
            int n = _stream.Read(data, read, data.Length - read);
            if (n == 0)
            {
                throw new GgufFormatException(FileName, tensor.Name, $"truncated: only {read} of {data.Length} data bytes could be read.");
            }
            read += n;
        }
        return data;
    }

    /// <summary>The raw bytes of the tensor named <paramref name="name"/>.</summary>
    public byte[] ReadTensorBytes(string name) => ReadTensorBytes(GetTensor(name));

    /// <summary>The tensor named <paramref name="name"/> decoded to float32 values.</summary>
    public float[] ReadTensorFloats(string name)
    {
        GgufTensorInfo t = GetTensor(name);
        return GgmlQuantization.Dequantize(t.Type, ReadTensorBytes(t));
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (_ownsStream)
        {
            _stream.Dispose();
        }
    }
}
