using PeftHost.Formats.Gguf;
using Xunit;

namespace PeftHost.Formats.Tests.Gguf;

/// <summary>Files written by <see cref="GgufWriter"/> read back identically through <see cref="GgufFile"/>.</summary>
public sealed class GgufRoundTripTests
{
    private static GgufFile WriteAndRead(GgufWriter writer, string name = "roundtrip.gguf")
    {
        var stream = new MemoryStream();
        writer.Write(stream);
        return GgufFile.Read(stream, name, ownsStream: true);
    }

    [Fact]
    public void Metadata_of_every_type_round_trips_in_order()
    {
        var w = new GgufWriter();
        w.SetMetadata("general.architecture", GgufValue.FromString("llama"));
        w.SetMetadata("u8", GgufValue.FromUInt8(200));
        w.SetMetadata("i8", GgufValue.FromInt8(-100));
        w.SetMetadata("u16", GgufValue.FromUInt16(60000));
        w.SetMetadata("i16", GgufValue.FromInt16(-30000));
        w.SetMetadata("u32", GgufValue.FromUInt32(4_000_000_000));
        w.SetMetadata("i32", GgufValue.FromInt32(-2_000_000_000));
        w.SetMetadata("f32", GgufValue.FromFloat32(1e-5f));
        w.SetMetadata("bool", GgufValue.FromBool(true));
        w.SetMetadata("u64", GgufValue.FromUInt64(ulong.MaxValue));
        w.SetMetadata("i64", GgufValue.FromInt64(long.MinValue));
        w.SetMetadata("f64", GgufValue.FromFloat64(Math.PI));
        w.SetMetadata("tokens", GgufValue.FromStrings(["<s>", "héllo", ""]));
        w.SetMetadata("scores", GgufValue.FromArray(GgufValueType.Float32, new[] { 0f, -1.5f }));
        w.SetMetadata("nested", GgufValue.FromArray(GgufValueType.Array, new[]
        {
            GgufValue.FromArray(GgufValueType.Int32, new[] { 1, 2 }),
            GgufValue.FromArray(GgufValueType.Bool, new[] { true }),
        }));

        using GgufFile f = WriteAndRead(w);
        Assert.Equal(3u, f.Version);
        Assert.Equal(32u, f.Alignment);
        Assert.Equal(
            ["general.architecture", "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "u64", "i64", "f64", "tokens", "scores", "nested"],
            f.Metadata.Select(kv => kv.Key));
        Assert.Equal("llama", f.GetMetadata("general.architecture").AsString());
        Assert.Equal((byte)200, f.GetMetadata("u8").Value);
        Assert.Equal((sbyte)-100, f.GetMetadata("i8").Value);
        Assert.Equal((ushort)60000, f.GetMetadata("u16").Value);
        Assert.Equal((short)-30000, f.GetMetadata("i16").Value);
        Assert.Equal(4_000_000_000u, f.GetMetadata("u32").Value);
        Assert.Equal(-2_000_000_000, f.GetMetadata("i32").Value);
        Assert.Equal(1e-5f, f.GetMetadata("f32").Value);
        Assert.Equal(true, f.GetMetadata("bool").Value);
        Assert.Equal(ulong.MaxValue, f.GetMetadata("u64").AsUInt64());
        Assert.Equal(long.MinValue, f.GetMetadata("i64").Value);
        Assert.Equal(Math.PI, f.GetMetadata("f64").AsDouble());
        Assert.Equal(new[] { "<s>", "héllo", "" }, (string[])f.GetMetadata("tokens").AsArray());
        Assert.Equal(new[] { 0f, -1.5f }, (float[])f.GetMetadata("scores").AsArray());
        var nested = (GgufValue[])f.GetMetadata("nested").AsArray();
        Assert.Equal(new[] { 1, 2 }, (int[])nested[0].AsArray());
        Assert.Equal(new[] { true }, (bool[])nested[1].AsArray());
        Assert.Throws<InvalidOperationException>(() => f.GetMetadata("u8").AsString());
    }

    [Theory]
    [InlineData(32u)]
    [InlineData(64u)]
    public void Tensors_of_every_type_round_trip_at_aligned_offsets(uint alignment)
    {
        var rng = new Random(7);
        float[] values = Enumerable.Range(0, 96 * 3).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();
        var w = new GgufWriter(alignment);
        w.SetMetadata("general.name", GgufValue.FromString("t"));
        var types = new[] { GgmlType.F32, GgmlType.F16, GgmlType.Q8_0, GgmlType.Q4_0 };
        foreach (GgmlType t in types)
        {
            w.AddTensor($"w.{GgmlTypeTraits.Name(t)}", [96, 3], t, values);
        }
        w.AddTensor("bias", [5], GgmlType.F32, new float[] { 1, 2, 3, 4, 5 });

        using GgufFile f = WriteAndRead(w);
        Assert.Equal(alignment, f.Alignment);
        Assert.Equal(0, f.DataOffset % alignment);
        Assert.Equal(alignment != 32, f.TryGetMetadata(GgufConstants.AlignmentKey, out _));
        foreach (GgmlType t in types)
        {
            GgufTensorInfo info = f.GetTensor($"w.{GgmlTypeTraits.Name(t)}");
            Assert.Equal(t, info.Type);
            Assert.Equal(new ulong[] { 96, 3 }, info.Dimensions);
            Assert.Equal(96UL, info.Columns);
            Assert.Equal(3UL, info.Rows);
            Assert.Equal(0UL, info.Offset % alignment);
            Assert.Equal(GgmlQuantization.Quantize(t, values), f.ReadTensorBytes(info));
            Assert.Equal(GgmlQuantization.Dequantize(t, GgmlQuantization.Quantize(t, values)), f.ReadTensorFloats(info.Name));
        }
        Assert.Equal(new float[] { 1, 2, 3, 4, 5 }, f.ReadTensorFloats("bias"));
    }

    [Fact]
    public void Files_on_disk_round_trip()
    {
        string path = Path.Combine(Path.GetTempPath(), $"pefthost-gguf-{Guid.NewGuid():N}.gguf");
        try
        {
            var w = new GgufWriter();
            w.AddTensor("x", [32], GgmlType.Q8_0, Enumerable.Range(0, 32).Select(i => (float)i).ToArray());
            w.Write(path);
            using GgufFile f = GgufFile.Open(path);
            Assert.Equal(path, f.FileName);
            Assert.Equal(31f, f.ReadTensorFloats("x")[31], 0.2f);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Writer_rejects_bad_tensors()
    {
        var w = new GgufWriter();
        Assert.Throws<ArgumentException>(() => w.AddTensor("q", [33], GgmlType.Q4_0, new byte[18 * 2]));
        Assert.Throws<ArgumentException>(() => w.AddTensor("f", [4], GgmlType.F32, new byte[15]));
        w.AddTensor("f", [4], GgmlType.F32, new byte[16]);
        Assert.Throws<ArgumentException>(() => w.AddTensor("f", [4], GgmlType.F32, new byte[16]));
        Assert.Throws<ArgumentException>(() => w.SetMetadata(GgufConstants.AlignmentKey, GgufValue.FromUInt32(64)));
    }
}
