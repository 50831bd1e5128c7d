using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using PeftHost.Formats.Safetensors;
using PeftHost.Formats.Tests.Support;
using Xunit;

namespace PeftHost.Formats.Tests.Safetensors;

public class SafetensorsWriteTests
{
    private static List<SafetensorsWriteTensor> AllDTypes() =>
    [
        SafetensorsWriteTensor.FromSingles("f32", [2, 3], [1, -2, 3.5f, 0, float.MaxValue, -0.25f]),
        SafetensorsWriteTensor.FromSingles("f16", [3], [1, -2.5f, 65504], SafetensorsDType.F16),
        SafetensorsWriteTensor.FromSingles("bf16", [2], [1, -3.0e38f], SafetensorsDType.BF16),
        SafetensorsWriteTensor.FromSingles("f64", [1], [0.125f], SafetensorsDType.F64),
        SafetensorsWriteTensor.FromInt64s("i64", [2], [long.MinValue, 42]),
        SafetensorsWriteTensor.FromBytes("i32", SafetensorsDType.I32, [2], BitConverter.GetBytes(-7).Concat(BitConverter.GetBytes(9)).ToArray()),
        SafetensorsWriteTensor.FromBytes("i8", SafetensorsDType.I8, [3], new byte[] { 0xFF, 0x01, 0x80 }),
        SafetensorsWriteTensor.FromBytes("u8", SafetensorsDType.U8, [2, 1], new byte[] { 200, 7 }),
        SafetensorsWriteTensor.FromBytes("mask", SafetensorsDType.Bool, [3], new byte[] { 1, 0, 1 }),
        SafetensorsWriteTensor.FromSingles("scalar", [], [5]),
        SafetensorsWriteTensor.FromSingles("empty", [0, 4], []),
    ];

    [Fact]
    public void Every_dtype_round_trips_with_metadata()
    {
        using var dir = new TempDir();
        string path = dir.File("all.safetensors");
        SafetensorsWriter.Write(path, AllDTypes(), new Dictionary<string, string> { ["format"] = "pt", ["note"] = "ünïcode" });

        using var file = SafetensorsFile.Open(path);
        Assert.Equal("pt", file.Metadata["format"]);
        Assert.Equal("ünïcode", file.Metadata["note"]);
        Assert.Equal([1, -2, 3.5f, 0, float.MaxValue, -0.25f], file.ReadSingles("f32"));
        Assert.Equal([1, -2.5f, 65504], file.ReadSingles("f16"));
        Assert.Equal(SafetensorsDType.BF16, file.Info("bf16").DType);
        Assert.Equal([1f, BFloat16.ToSingle(BFloat16.FromSingle(-3.0e38f))], file.ReadSingles("bf16"));
        Assert.Equal([0.125f], file.ReadSingles("f64"));
        Assert.Equal([long.MinValue, 42], file.ReadInt64s("i64"));
        Assert.Equal([-7L, 9], file.ReadInt64s("i32"));
        Assert.Equal([-1L, 1, -128], file.ReadInt64s("i8"));
        Assert.Equal([200L, 7], file.ReadInt64s("u8"));
        Assert.Equal([2L, 1], file.Info("u8").Shape);
        Assert.Equal([1L, 0, 1], file.ReadInt64s("mask"));
        Assert.Empty(file.Info("scalar").Shape);
        Assert.Equal([5f], file.ReadSingles("scalar"));
        Assert.Equal(0, file.Info("empty").ByteLength);
    }

    [Fact]
    public void Layout_is_standard_padded_header_then_contiguous_data_ordered_by_element_size()
    {
        using var dir = new TempDir();
        string path = dir.File("layout.safetensors");
        SafetensorsWriter.Write(path, AllDTypes(), new Dictionary<string, string> { ["format"] = "pt" });
        byte[] bytes = File.ReadAllBytes(path);

        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.Equal(0UL, n % 8);
        string header = Encoding.UTF8.GetString(bytes, 8, (int)n);
        Assert.Matches(new System.Text.RegularExpressions.Regex(@"^\{.*\} *$", System.Text.RegularExpressions.RegexOptions.Singleline), header);

        using JsonDocument doc = JsonDocument.Parse(header.TrimEnd(' '));
        var entries = doc.RootElement.EnumerateObject().Where(p => p.Name != "__metadata__")
            .Select(p => (p.Name, Dtype: p.Value.GetProperty("dtype").GetString()!, Begin: p.Value.GetProperty("data_offsets")[0].GetInt64(), End: p.Value.GetProperty("data_offsets")[1].GetInt64()))
            .OrderBy(e => e.Begin).ThenBy(e => e.End).ToList();
        long expected = 0;
        foreach (var e in entries)
        {
            Assert.Equal(expected, e.Begin);
            expected = e.End;
        }
        Assert.Equal(bytes.Length - 8 - (long)n, expected);
        // Element size descending: 8-byte types, then 4, 2, 1; names sorted within a size.
        string[] order = doc.RootElement.EnumerateObject().Where(p => p.Name != "__metadata__").Select(p => p.Name).ToArray();
        Assert.Equal(["f64", "i64", "empty", "f32", "i32", "scalar", "bf16", "f16", "i8", "mask", "u8"], order);
        // The data of f64 (0.125) starts right after the header.
        Assert.Equal(0.125, BitConverter.ToDouble(bytes, 8 + (int)n));
    }

    [Fact]
    public void Writing_replaces_the_file_atomically_and_leaves_no_temporary_file()
    {
        using var dir = new TempDir();
        string path = dir.File("w.safetensors");
        SafetensorsWriter.Write(path, [SafetensorsWriteTensor.FromSingles("a", [1], [1])]);
        using (var reader = SafetensorsFile.Open(path))
        {
            // On Linux a reader that has the old file mapped keeps seeing it while the new one is
            // renamed in (Windows refuses to replace a mapped file, so replace after closing there).
            if (!OperatingSystem.IsWindows())
            {
                SafetensorsWriter.Write(path, [SafetensorsWriteTensor.FromSingles("a", [2], [2, 3])]);
                Assert.Equal([1f], reader.ReadSingles("a"));
            }
        }
        if (OperatingSystem.IsWindows()) SafetensorsWriter.Write(path, [SafetensorsWriteTensor.FromSingles("a", [2], [2, 3])]);
        using (var reader = SafetensorsFile.Open(path)) Assert.Equal([2f, 3], reader.ReadSingles("a"));
        Assert.Equal(["w.safetensors"], Directory.GetFiles(dir.Path).Select(Path.GetFileName));
    }

    [Fact]
    public void A_failed_write_keeps_the_old_file_and_removes_the_temporary_one()
    {
        using var dir = new TempDir();
        string path = dir.File("w.safetensors");
        SafetensorsWriter.Write(path, [SafetensorsWriteTensor.FromSingles("a", [1], [1])]);
        var shortWriter = new SafetensorsWriteTensor("b", SafetensorsDType.F32, [4], s => s.Write(new byte[12]));

        var e = Assert.Throws<InvalidDataException>(() => SafetensorsWriter.Write(path, [shortWriter]));

        Assert.Contains("tensor 'b'", e.Message);
        Assert.Contains("wrote 12 bytes instead of 16", e.Message);
        using var reader = SafetensorsFile.Open(path);
        Assert.Equal([1f], reader.ReadSingles("a"));
        Assert.Single(Directory.GetFiles(dir.Path));
    }

    [Fact]
    public void Duplicate_and_reserved_names_are_refused()
    {
        using var dir = new TempDir();
        var dup = Assert.Throws<ArgumentException>(() => SafetensorsWriter.Write(dir.File("d.safetensors"),
            [SafetensorsWriteTensor.FromSingles("x", [1], [1]), SafetensorsWriteTensor.FromSingles("x", [1], [2])]));
        Assert.StartsWith("Tensor 'x' is listed twice.", dup.Message);
        Assert.Throws<ArgumentException>(() => SafetensorsWriter.Write(dir.File("m.safetensors"), [SafetensorsWriteTensor.FromSingles("__metadata__", [1], [1])]));
        Assert.Empty(Directory.GetFiles(dir.Path));
    }

    [Fact]
    public void BFloat16_rounds_to_nearest_even()
    {
        Assert.Equal(0x3F80, BFloat16.FromSingle(1f));
        Assert.Equal(1f, BFloat16.ToSingle(0x3F80));
        // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties go to the even mantissa (1).
        Assert.Equal(0x3F80, BFloat16.FromSingle(1f + 1f / 256));
        // 1 + 3 * 2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6: ties go to the even one (1 + 2^-6).
        Assert.Equal(0x3F82, BFloat16.FromSingle(1f + 3f / 256));
        Assert.True(float.IsNaN(BFloat16.ToSingle(BFloat16.FromSingle(float.NaN))));
    }
}
