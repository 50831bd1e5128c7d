using System.Buffers.Binary;
using PeftHost.Formats.Gguf;
using Xunit;

namespace PeftHost.Formats.Tests.Gguf;

/// <summary>Broken files give errors that name the file, the tensor where there is one, and the problem.</summary>
public sealed class GgufErrorTests
{
    // Header of the file below: tensor "blk.0.w" type field at a known offset.
    private static byte[] ValidFile()
    {
        var w = new GgufWriter();
        w.SetMetadata("general.architecture", GgufValue.FromString("llama"));
        w.AddTensor("blk.0.w", [32, 2], GgmlType.Q8_0, new float[64]);
        var ms = new MemoryStream();
        w.Write(ms);
        return ms.ToArray();
    }

    // Offset of the tensor info's type field: header 24, kv (8+20 key, 4 type, 8+5 value), name 8+7, n_dims 4, dims 16.
    private const int TypeFieldOffset = 24 + 8 + 20 + 4 + 8 + 5 + 8 + 7 + 4 + 16;

    private static GgufFormatException ReadFails(byte[] bytes, string name = "model.gguf") =>
        Assert.Throws<GgufFormatException>(() => GgufFile.Read(new MemoryStream(bytes), name).Dispose());

    [Fact]
    public void The_layout_assumed_by_these_tests_is_right()
    {
        byte[] bytes = ValidFile();
        Assert.Equal((uint)GgmlType.Q8_0, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(TypeFieldOffset)));
        using GgufFile f = GgufFile.Read(new MemoryStream(bytes), "ok.gguf");
        Assert.Equal(68UL, f.GetTensor("blk.0.w").ByteCount);
    }

    [Fact]
    public void Bad_magic_is_named()
    {
        byte[] bytes = ValidFile();
        bytes[0] = (byte)'X';
        GgufFormatException e = ReadFails(bytes, "weights.bin");
        Assert.Contains("weights.bin", e.Message);
        Assert.Contains("magic", e.Message);
        Assert.Equal("weights.bin", e.FileName);
    }

    [Theory]
    [InlineData(1u, "version 1")]
    [InlineData(4u, "version 4")]
    [InlineData(0x03000000u, "big-endian")]
    public void Unsupported_versions_are_named(uint version, string expected)
    {
        byte[] bytes = ValidFile();
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(4), version);
        Assert.Contains(expected, ReadFails(bytes).Message);
    }

    [Fact]
    public void Truncation_anywhere_is_reported()
    {
        byte[] bytes = ValidFile();
        for (int cut = 0; cut < bytes.Length; cut += 3)
        {
            if (cut >= 96 + 68)
            {
                break;   // past the data's end only padding is missing, which is not required
            }
            GgufFormatException e = ReadFails(bytes[..cut], "cut.gguf");
            Assert.Contains("cut.gguf", e.Message);
            Assert.Contains("truncated", e.Message);
        }
    }

    [Fact]
    public void Truncated_data_names_the_tensor()
    {
        byte[] bytes = ValidFile();
        GgufFormatException e = ReadFails(bytes[..(96 + 60)]);
        Assert.Equal("blk.0.w", e.TensorName);
        Assert.Contains("tensor 'blk.0.w'", e.Message);
    }

    [Fact]
    public void Unknown_tensor_type_names_the_tensor_and_the_id()
    {
        byte[] bytes = ValidFile();
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(TypeFieldOffset), 12);   // Q4_K
        GgufFormatException e = ReadFails(bytes);
        Assert.Equal("blk.0.w", e.TensorName);
        Assert.Contains("type id 12", e.Message);
    }

    [Fact]
    public void Misaligned_offset_names_the_tensor()
    {
        byte[] bytes = ValidFile();
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(TypeFieldOffset + 4), 8);
        GgufFormatException e = ReadFails(bytes);
        Assert.Equal("blk.0.w", e.TensorName);
        Assert.Contains("not a multiple of the alignment 32", e.Message);
    }

    [Fact]
    public void Unknown_metadata_type_is_named()
    {
        byte[] bytes = ValidFile();
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(24 + 8 + 20), 13);
        Assert.Contains("unknown value type 13", ReadFails(bytes).Message);
    }

    [Fact]
    public void Block_types_need_whole_blocks_per_row()
    {
        byte[] bytes = ValidFile();
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(TypeFieldOffset - 16), 16);   // dims [16, 2]
        GgufFormatException e = ReadFails(bytes);
        Assert.Equal("blk.0.w", e.TensorName);
        Assert.Contains("block size 32", e.Message);
    }

    [Fact]
    public void Missing_tensor_and_key_are_named()
    {
        using GgufFile f = GgufFile.Read(new MemoryStream(ValidFile()), "m.gguf");
        Assert.Contains("tensor 'nope'", Assert.Throws<GgufFormatException>(() => f.GetTensor("nope")).Message);
        Assert.Contains("'llama.context_length' is missing", Assert.Throws<GgufFormatException>(() => f.GetMetadata("llama.context_length")).Message);
    }
}
