using System.Text;

namespace PeftHost.Formats.Gguf;

/// <summary>Parses a GGUF header (metadata and tensor infos) from a seekable little-endian stream.</summary>
internal sealed class GgufReader
{
    private readonly BinaryReader _reader;
    private readonly Stream _stream;
    private readonly string _fileName;
    private readonly long _length;

    public GgufReader(Stream stream, string fileName)
    {
        _stream = stream;
        _fileName = fileName;
        _length = stream.Length;
        // BinaryReader reads little-endian on every platform.
        _reader = new BinaryReader(stream, Encoding.UTF8, leaveOpen: true);
    }

    public GgufHeader ReadHeader()
    {
        try
        {
            return ReadHeaderCore();
        }
        catch (EndOfStreamException)
        {
            throw Error(null, $"truncated: the file ends inside the header (at {_stream.Position} of {_length} bytes).");
        }
    }

    private GgufHeader ReadHeaderCore()
    {
        if (_length < 4)
        {
            throw Error(null, $"truncated: {_length} bytes, too short for the magic number.");
        }
        uint magic = _reader.ReadUInt32();
        if (magic != GgufConstants.Magic)
        {
            throw Error(null, $"bad magic 0x{magic:X8} (expected 'GGUF', 0x{GgufConstants.Magic:X8}); not a GGUF file.");
        }
        uint version = _reader.ReadUInt32();
        if (version is not (2 or 3))
        {
            string hint = (version & 0xFFFF) == 0 && version != 0 ? " (a big-endian GGUF file? only little-endian is supported)" : "";
            throw Error(null, $"unsupported GGUF version {version}{hint}; versions 2 and 3 are supported.");
        }
        ulong tensorCount = _reader.ReadUInt64();
        ulong kvCount = _reader.ReadUInt64();
        CheckCount(tensorCount, 8, "tensor count");
        CheckCount(kvCount, 12, "metadata count");

        var metadata = new List<KeyValuePair<string, GgufValue>>((int)kvCount);
        var keys = new HashSet<string>(StringComparer.Ordinal);
        for (ulong i = 0; i < kvCount; i++)
        {
            string key = ReadString();
            if (!keys.Add(key))
            {
                throw Error(null, $"duplicate metadata key '{key}'.");
            }
            uint typeId = _reader.ReadUInt32();
            metadata.Add(new(key, ReadValue(CheckValueType(typeId, key), key)));
        }

        uint alignment = GgufConstants.DefaultAlignment;
        GgufValue? alignValue = metadata.FirstOrDefault(kv => kv.Key == GgufConstants.AlignmentKey).Value;
        if (alignValue is not null)
        {
            if (alignValue.Type != GgufValueType.UInt32 || (uint)alignValue.Value == 0 || !uint.IsPow2((uint)alignValue.Value))
            {
                throw Error(null, $"{GgufConstants.AlignmentKey} must be a power-of-two UINT32, got {alignValue.Type} {alignValue}.");
            }
            alignment = (uint)alignValue.Value;
        }

        var tensors = new List<GgufTensorInfo>((int)tensorCount);
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (ulong i = 0; i < tensorCount; i++)
        {
            string name = ReadString();
            if (!names.Add(name))
            {
                throw Error(name, "duplicate tensor name.");
            }
            uint nDims = _reader.ReadUInt32();
            if (nDims > GgufConstants.MaxDimensions)
            {
                throw Error(name, $"{nDims} dimensions; at most {GgufConstants.MaxDimensions} are allowed.");
            }
            var dims = new ulong[nDims];
            for (int d = 0; d < nDims; d++)
            {
                dims[d] = _reader.ReadUInt64();
                if (dims[d] == 0 || dims[d] > long.MaxValue)
                {
                    throw Error(name, $"dimension {d} is {dims[d]}.");
                }
            }
            uint typeId = _reader.ReadUInt32();
            if (!GgmlTypeTraits.IsSupported(typeId))
            {
                throw Error(name, $"unknown or unsupported GGML type id {typeId}; supported: f32 (0), f16 (1), q4_0 (2), q8_0 (8).");
            }
            var type = (GgmlType)typeId;
            ulong offset = _reader.ReadUInt64();
            if (offset % alignment != 0)
            {
                throw Error(name, $"data offset {offset} is not a multiple of the alignment {alignment}.");
            }
            var info = new GgufTensorInfo(name, dims, type, offset);
            ulong elements;
            try
            {
                elements = info.ElementCount;
                // The byte count must fit too (ByteCount itself does not check: it is only read once this passed).
                _ = checked(elements / (ulong)GgmlTypeTraits.BlockSize(type) * (ulong)GgmlTypeTraits.BlockBytes(type));
            }
            catch (OverflowException)
            {
                throw Error(name, $"[{string.Join(", ", dims)}] of {GgmlTypeTraits.Name(type)} is more than 2^64 bytes.");
            }
            int block = GgmlTypeTraits.BlockSize(type);
            if (nDims > 0 && dims[0] % (ulong)block != 0)
            {
                throw Error(name, $"the first dimension {dims[0]} is not a multiple of the {GgmlTypeTraits.Name(type)} block size {block}.");
            }
            if (elements % (ulong)block != 0)
            {
                throw Error(name, $"{elements} elements are not a whole number of {block}-element blocks.");
            }
            tensors.Add(info);
        }

        long dataOffset = AlignUp(_stream.Position, alignment);
        ulong dataBytes = (ulong)Math.Max(0, _length - dataOffset);
        foreach (GgufTensorInfo t in tensors)
        {
            // Compared without adding, so that no lying offset can wrap around.
            if (t.Offset > dataBytes || t.ByteCount > dataBytes - t.Offset)
            {
                throw Error(t.Name, $"truncated: its {t.ByteCount} data bytes at offset {t.Offset} do not fit in the {dataBytes} bytes of the data section ({_length} bytes in the file).");
            }
        }
        return new GgufHeader(version, metadata, tensors, alignment, dataOffset);
    }

    private GgufValueType CheckValueType(uint typeId, string key)
    {
        if (typeId > (uint)GgufValueType.Float64)
        {
            throw Error(null, $"metadata key '{key}' has unknown value type {typeId}.");
        }
        return (GgufValueType)typeId;
    }

    // Arrays of arrays nest by recursion: a hostile file could nest them deep enough to overflow the stack.
    private const int MaxArrayDepth = 8;

    private GgufValue ReadValue(GgufValueType type, string key, int depth = 0)
    {
        if (type != GgufValueType.Array)
        {
            return GgufValue.FromScalar(type, ReadScalar(type, key));
        }
        if (depth >= MaxArrayDepth)
        {
            throw Error(null, $"metadata key '{key}' nests arrays more than {MaxArrayDepth} deep.");
        }
        GgufValueType elementType = CheckValueType(_reader.ReadUInt32(), key);
        ulong count = _reader.ReadUInt64();
        CheckCount(count, elementType is GgufValueType.String or GgufValueType.Array ? 8 : ScalarSize(elementType), $"array length of '{key}'");
        Array array = Array.CreateInstance(GgufValue.ClrType(elementType), (int)count);
        for (int i = 0; i < (int)count; i++)
        {
            array.SetValue(elementType == GgufValueType.Array ? ReadValue(GgufValueType.Array, key, depth + 1) : ReadScalar(elementType, key), i);
        }
        return GgufValue.FromArray(elementType, array);
    }

    private object ReadScalar(GgufValueType type, string key) => type switch
    {
        GgufValueType.UInt8 => _reader.ReadByte(),
        GgufValueType.Int8 => _reader.ReadSByte(),
        GgufValueType.UInt16 => _reader.ReadUInt16(),
        GgufValueType.Int16 => _reader.ReadInt16(),
        GgufValueType.UInt32 => _reader.ReadUInt32(),
        GgufValueType.Int32 => _reader.ReadInt32(),
        GgufValueType.Float32 => _reader.ReadSingle(),
        GgufValueType.Bool => ReadBool(key),
        GgufValueType.String => ReadString(),
        GgufValueType.UInt64 => _reader.ReadUInt64(),
        GgufValueType.Int64 => _reader.ReadInt64(),
        GgufValueType.Float64 => _reader.ReadDouble(),
        _ => throw Error(null, $"metadata key '{key}' has unknown value type {(uint)type}."),
    };

    private bool ReadBool(string key)
    {
        byte b = _reader.ReadByte();
        return b switch
        {
            0 => false,
            1 => true,
            _ => throw Error(null, $"metadata key '{key}' has a BOOL byte {b}, not 0 or 1."),
        };
    }

    private string ReadString()
    {
        ulong length = _reader.ReadUInt64();
        CheckCount(length, 1, "string length");
        byte[] bytes = _reader.ReadBytes((int)length);
        if (bytes.Length != (int)length)
        {
            throw new EndOfStreamException();
        }
        return Encoding.UTF8.GetString(bytes);
    }

    // A count that could not fit in the rest of the file means a truncated or corrupt file; checking
    // first avoids allocating gigabytes for a garbage length.
    private void CheckCount(ulong count, int minBytesEach, string what)
    {
        ulong remaining = (ulong)(_length - _stream.Position);
        if (count > int.MaxValue || count * (ulong)minBytesEach > remaining)
        {
            throw Error(null, $"truncated or corrupt: {what} {count} does not fit in the {remaining} bytes left (at byte {_stream.Position}).");
        }
    }

    private static int ScalarSize(GgufValueType type) => type switch
    {
        GgufValueType.UInt8 or GgufValueType.Int8 or GgufValueType.Bool => 1,
        GgufValueType.UInt16 or GgufValueType.Int16 => 2,
        GgufValueType.UInt32 or GgufValueType.Int32 or GgufValueType.Float32 => 4,
        _ => 8,
    };

    internal static long AlignUp(long value, uint alignment) => (value + alignment - 1) / alignment * alignment;

    private GgufFormatException Error(string? tensor, string problem) => new(_fileName, tensor, problem);
}
