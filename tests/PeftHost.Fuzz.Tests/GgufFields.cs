using System.Buffers.Binary;

namespace PeftHost.Fuzz.Tests;

/// <summary>
/// Where a GGUF file keeps its lengths, counts, dimensions and offsets, found by walking its layout as the
/// specification gives it (independently of the reader under test): the places a lying field is planted.
/// </summary>
internal static class GgufFields
{
    public static List<(int Offset, int Width)> Of(byte[] file)
    {
        var fields = new List<(int, int)> { (4, 4), (8, 8), (16, 8) };
        int at = 24;
        ulong tensors = BinaryPrimitives.ReadUInt64LittleEndian(file.AsSpan(8));
        ulong kvs = BinaryPrimitives.ReadUInt64LittleEndian(file.AsSpan(16));
        for (ulong i = 0; i < kvs; i++)
        {
            at = String(file, at, fields);
            fields.Add((at, 4));
            uint type = BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(at));
            at = Value(file, at + 4, type, fields);
        }
        for (ulong i = 0; i < tensors; i++)
        {
            at = String(file, at, fields);
            fields.Add((at, 4));
            uint dims = BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(at));
            at += 4;
            for (uint d = 0; d < dims; d++, at += 8) fields.Add((at, 8));
            fields.Add((at, 4));
            fields.Add((at + 4, 8));
            at += 12;
        }
        return fields;
    }

    private static int String(byte[] file, int at, List<(int, int)> fields)
    {
        fields.Add((at, 8));
        return at + 8 + (int)BinaryPrimitives.ReadUInt64LittleEndian(file.AsSpan(at));
    }

    private static int Value(byte[] file, int at, uint type, List<(int, int)> fields)
    {
        switch (type)
        {
            case 0 or 1 or 7: return at + 1;
            case 2 or 3: return at + 2;
            case 4 or 5 or 6: return at + 4;
            case 10 or 11 or 12: return at + 8;
            case 8: return String(file, at, fields);
            case 9:
                fields.Add((at, 4));
                fields.Add((at + 4, 8));
                uint element = BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(at));
                ulong count = BinaryPrimitives.ReadUInt64LittleEndian(file.AsSpan(at + 4));
                at += 12;
                for (ulong i = 0; i < count; i++) at = Value(file, at, element, fields);
                return at;
            default: throw new InvalidDataException($"GGUF value type {type} in a seed file.");
        }
    }
}
