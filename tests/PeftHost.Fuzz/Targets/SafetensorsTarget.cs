using PeftHost.Formats.Safetensors;

namespace PeftHost.Fuzz.Targets;

/// <summary>A safetensors file (header and data), opened as a file and as a one-file checkpoint, every tensor read.</summary>
public sealed class SafetensorsTarget : FuzzTarget
{
    /// <inheritdoc />
    public override string Name => "safetensors";

    /// <inheritdoc />
    public override string Description => "model.safetensors: header JSON, offsets, dtypes, shapes; every tensor read back";

    /// <inheritdoc />
    protected override void Run(byte[] input)
    {
        string path = FuzzScratch.Fresh("model.safetensors", input);
        using (SafetensorsFile file = SafetensorsFile.Open(path))
            Check(file, input);
        using SafetensorsCheckpoint checkpoint = SafetensorsCheckpoint.Open(path);
        foreach (string name in checkpoint.Names)
            if (!checkpoint.FileOf(name).Contains(name)) throw Inconsistent($"the checkpoint lists '{name}' but its file does not hold it");
    }

    /// <summary>Every tensor's bytes lie inside the data section, match its shape, and read back as the bytes at that place in the file.</summary>
    internal static void Check(SafetensorsFile file, byte[] input)
    {
        long dataStart = input.Length - file.DataLength;
        foreach (SafetensorsTensorInfo t in file.Tensors)
        {
            if (t.Begin < 0 || t.End < t.Begin || t.End > file.DataLength)
                throw new FuzzOracleException($"safetensors: tensor '{t.Name}' spans [{t.Begin}, {t.End}) outside the {file.DataLength}-byte data section");
            if (t.ElementCount * t.DType.Size() != t.ByteLength)
                throw new FuzzOracleException($"safetensors: tensor '{t.Name}' {t.ShapeText} of {t.DType.Name()} has {t.ByteLength} bytes");
            ReadOnlySpan<byte> bytes = file.GetBytes(t.Name);
            if (!bytes.SequenceEqual(input.AsSpan((int)(dataStart + t.Begin), (int)t.ByteLength)))
                throw new FuzzOracleException($"safetensors: tensor '{t.Name}' reads other bytes than the file holds at its offsets");
            long count = t.DType is SafetensorsDType.F32 or SafetensorsDType.F16 or SafetensorsDType.BF16 or SafetensorsDType.F64
                ? file.ReadSingles(t.Name).Length
                : file.ReadInt64s(t.Name).Length;
            if (count != t.ElementCount) throw new FuzzOracleException($"safetensors: tensor '{t.Name}' read {count} values, not {t.ElementCount}");
        }
    }

    /// <inheritdoc />
    protected override bool IsCleanError(Exception e) => e is InvalidDataException;
}
