using System.Text.Json;

namespace PeftHost.Formats.Safetensors;

/// <summary>
/// Writes safetensors files: header JSON padded with spaces to a multiple of 8 bytes (so the data
/// section is 8-byte aligned), tensors contiguous, ordered as the official writer does (larger
/// element size first, then by name). Every file is written to a temporary file in the same
/// folder, flushed to disk and renamed over the target, so a reader never sees a half-written file.
/// </summary>
public static class SafetensorsWriter
{
    /// <summary>The index file name of a sharded checkpoint.</summary>
    public const string IndexFileName = "model.safetensors.index.json";

    /// <summary>Writes one file atomically.</summary>
    /// <exception cref="ArgumentException">A name is empty, reserved or duplicated.</exception>
    /// <exception cref="InvalidDataException">A tensor's callback wrote a different number of bytes than its shape needs.</exception>
    public static void Write(string path, IEnumerable<SafetensorsWriteTensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        List<SafetensorsWriteTensor> ordered = Order(tensors);
        byte[] header = Header(ordered, metadata);
        string full = System.IO.Path.GetFullPath(path);
        AtomicFile.Write(full, stream =>
        {
            Span<byte> length = stackalloc byte[8];
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)header.Length);
            stream.Write(length);
            stream.Write(header);
            foreach (SafetensorsWriteTensor t in ordered)
            {
                long before = stream.Position;
                t.WriteData(stream);
                long written = stream.Position - before;
                if (written != t.ByteLength)
                    throw new InvalidDataException($"Writing '{full}': tensor '{t.Name}' (shape [{string.Join(", ", t.Shape)}], {t.DType.Name()}) wrote {written} bytes instead of {t.ByteLength}.");
            }
        }, bufferSize: 1 << 20);
    }

    /// <summary>
    /// Writes a sharded checkpoint into <paramref name="folder"/>: <c>model-0000i-of-0000n.safetensors</c>
    /// files of at most <paramref name="maxShardBytes"/> of data each (a larger tensor gets a shard of
    /// its own) and <c>model.safetensors.index.json</c> (<c>metadata.total_size</c>, <c>weight_map</c>),
    /// as transformers' <c>save_pretrained</c> does. Returns the shard file names.
    /// </summary>
    public static IReadOnlyList<string> WriteSharded(string folder, IEnumerable<SafetensorsWriteTensor> tensors, long maxShardBytes, IReadOnlyDictionary<string, string>? metadata = null)
    {
        if (maxShardBytes <= 0) throw new ArgumentOutOfRangeException(nameof(maxShardBytes), "The shard size must be positive.");
        var shards = new List<List<SafetensorsWriteTensor>> { new() };
        long current = 0;
        foreach (SafetensorsWriteTensor t in tensors)
        {
            if (current > 0 && current + t.ByteLength > maxShardBytes)
            {
                shards.Add([]);
                current = 0;
            }
            shards[^1].Add(t);
            current += t.ByteLength;
        }
        var names = new List<string>();
        var weightMap = new SortedDictionary<string, string>(StringComparer.Ordinal);
        for (int i = 0; i < shards.Count; i++)
        {
            string name = $"model-{i + 1:D5}-of-{shards.Count:D5}.safetensors";
            Write(System.IO.Path.Combine(folder, name), shards[i], metadata);
            names.Add(name);
            foreach (SafetensorsWriteTensor t in shards[i]) weightMap[t.Name] = name;
        }
        long total = shards.Sum(s => s.Sum(t => t.ByteLength));
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartObject();
            json.WriteStartObject("metadata");
            json.WriteNumber("total_size", total);
            json.WriteEndObject();
            json.WriteStartObject("weight_map");
            foreach ((string tensor, string shard) in weightMap) json.WriteString(tensor, shard);
            json.WriteEndObject();
            json.WriteEndObject();
        }
        AtomicFile.WriteAllBytes(System.IO.Path.Combine(folder, IndexFileName), buffer.ToArray());
        return names;
    }

    private static List<SafetensorsWriteTensor> Order(IEnumerable<SafetensorsWriteTensor> tensors)
    {
        var list = tensors.ToList();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (SafetensorsWriteTensor t in list)
        {
            if (string.IsNullOrEmpty(t.Name)) throw new ArgumentException("A tensor name is empty.", nameof(tensors));
            if (t.Name == "__metadata__") throw new ArgumentException("'__metadata__' is reserved for the header's metadata and cannot name a tensor.", nameof(tensors));
            if (!names.Add(t.Name)) throw new ArgumentException($"Tensor '{t.Name}' is listed twice.", nameof(tensors));
        }
        return [.. list.OrderByDescending(t => t.DType.Size()).ThenBy(t => t.Name, StringComparer.Ordinal)];
    }

    private static byte[] Header(List<SafetensorsWriteTensor> ordered, IReadOnlyDictionary<string, string>? metadata)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                json.WriteStartObject("__metadata__");
                foreach ((string k, string v) in metadata.OrderBy(kv => kv.Key, StringComparer.Ordinal)) json.WriteString(k, v);
                json.WriteEndObject();
            }
            long offset = 0;
            foreach (SafetensorsWriteTensor t in ordered)
            {
                json.WriteStartObject(t.Name);
                json.WriteString("dtype", t.DType.Name());
                json.WriteStartArray("shape");
                foreach (long d in t.Shape) json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + t.ByteLength);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += t.ByteLength;
            }
            json.WriteEndObject();
        }
        int padding = (int)((8 - buffer.Length % 8) % 8);
        for (int i = 0; i < padding; i++) buffer.WriteByte((byte)' ');
        return buffer.ToArray();
    }
}
