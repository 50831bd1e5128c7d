using PeftHost.Formats.Gguf;

namespace PeftHost.Fuzz.Targets;

/// <summary>A GGUF file read from a stream: header, metadata (every value read back), every tensor decoded.</summary>
public sealed class GgufTarget : FuzzTarget
{
    private const string FileName = "fuzz.gguf";

    /// <inheritdoc />
    public override string Name => "gguf";

    /// <inheritdoc />
    public override string Description => "GGUF v2/v3: magic, counts, metadata values and arrays, tensor infos, alignment, data; every tensor decoded";

    /// <inheritdoc />
    protected override void Run(byte[] input)
    {
        using var stream = new MemoryStream(input, writable: false);
        using GgufFile file = GgufFile.Read(stream, FileName);
        foreach ((string key, GgufValue value) in file.Metadata)
        {
            if (!file.TryGetMetadata(key, out GgufValue again) || !ReferenceEquals(again, value)) throw Inconsistent($"metadata key '{key}' is not found by name");
            _ = value.ToString();
        }
        foreach (GgufTensorInfo t in file.Tensors)
        {
            ulong end = (ulong)file.DataOffset + t.Offset + t.ByteCount;
            if (end > (ulong)input.Length) throw Inconsistent($"tensor '{t.Name}' ends at byte {end} of a {input.Length}-byte file");
            byte[] bytes = file.ReadTensorBytes(t);
            if ((ulong)bytes.Length != t.ByteCount || !bytes.AsSpan().SequenceEqual(input.AsSpan((int)(file.DataOffset + (long)t.Offset), bytes.Length)))
                throw Inconsistent($"tensor '{t.Name}' reads other bytes than the file holds at its offset");
            float[] values = file.ReadTensorFloats(t.Name);
            if ((ulong)values.Length != t.ElementCount) throw Inconsistent($"tensor '{t.Name}' decodes to {values.Length} values, not {t.ElementCount}");
        }
    }

    /// <inheritdoc />
    protected override bool IsCleanError(Exception e) => e is GgufFormatException;

    /// <inheritdoc />
    protected override bool NamesItsSubject(string message) => message.Contains(FileName, StringComparison.Ordinal);
}
