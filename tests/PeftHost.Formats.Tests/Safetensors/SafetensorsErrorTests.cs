using PeftHost.Formats.Safetensors;
using PeftHost.Formats.Tests.Support;
using Xunit;

namespace PeftHost.Formats.Tests.Safetensors;

/// <summary>Broken files give an InvalidDataException naming the file and the tensor; never a crash or a wrong read.</summary>
public class SafetensorsErrorTests
{
    private static InvalidDataException OpenFails(string path) => Assert.Throws<InvalidDataException>(() => SafetensorsFile.Open(path).Dispose());

    [Fact]
    public void A_truncated_file_names_the_tensor_that_runs_past_the_end()
    {
        using var dir = new TempDir();
        string path = dir.File("t.safetensors");
        SafetensorsWriter.Write(path, [SafetensorsWriteTensor.FromSingles("a", [4], [1, 2, 3, 4]), SafetensorsWriteTensor.FromSingles("b", [2], [5, 6])]);
        byte[] bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..^4]);

        var e = OpenFails(path);
        Assert.Equal($"Invalid safetensors file '{path}': tensor 'b': data_offsets [16, 24] run past the end of the data section (20 bytes): the file is truncated or the header is wrong.", e.Message);
    }

    [Fact]
    public void A_file_cut_inside_the_header_or_shorter_than_8_bytes_is_truncated()
    {
        using var dir = new TempDir();
        string path = dir.File("h.safetensors");
        SafetensorsWriter.Write(path, [SafetensorsWriteTensor.FromSingles("a", [1], [1])]);
        File.WriteAllBytes(path, File.ReadAllBytes(path)[..20]);
        Assert.Contains("runs past the end of the file (20 bytes): truncated", OpenFails(path).Message);

        File.WriteAllBytes(path, [1, 2, 3]);
        Assert.Equal($"Invalid safetensors file '{path}': the file is 3 bytes, shorter than the 8-byte header length: truncated or not a safetensors file.", OpenFails(path).Message);
    }

    [Fact]
    public void A_header_that_lies_about_the_size_names_the_tensor()
    {
        using var dir = new TempDir();
        string path = dir.File("lie.safetensors");
        RawSafetensors.Write(path, """{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,16]}}""", new byte[16]);
        Assert.Equal($"Invalid safetensors file '{path}': tensor 'w': shape [2,3] of F32 needs 24 bytes but data_offsets [0, 16] give 16.", OpenFails(path).Message);
    }

    [Fact]
    public void Overlapping_tensors_are_refused()
    {
        using var dir = new TempDir();
        string path = dir.File("o.safetensors");
        RawSafetensors.Write(path, """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}""", new byte[12]);
        Assert.Equal($"Invalid safetensors file '{path}': tensor 'b' (data_offsets [4, 12]) overlaps tensor 'a' (data_offsets [0, 8]).", OpenFails(path).Message);
    }

    [Fact]
    public void Gaps_and_trailing_bytes_are_refused()
    {
        using var dir = new TempDir();
        string gap = dir.File("g.safetensors");
        RawSafetensors.Write(gap, """{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}""", new byte[8]);
        Assert.Contains("bytes 0..4 of the data section belong to no tensor (before tensor 'a')", OpenFails(gap).Message);

        string trailing = dir.File("tr.safetensors");
        RawSafetensors.Write(trailing, """{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""", new byte[12]);
        Assert.Contains("the data section is 12 bytes but the tensors cover 4 (last tensor 'a')", OpenFails(trailing).Message);
    }

    [Fact]
    public void An_unknown_dtype_is_named()
    {
        using var dir = new TempDir();
        string path = dir.File("d.safetensors");
        RawSafetensors.Write(path, """{"q":{"dtype":"Q4_K","shape":[2],"data_offsets":[0,2]}}""", new byte[2]);
        var e = OpenFails(path);
        Assert.StartsWith($"Invalid safetensors file '{path}': tensor 'q': unknown dtype 'Q4_K' (known: BOOL, U8, I8, I16, I32, I64, F16, BF16, F32, F64)", e.Message);
    }

    [Fact]
    public void A_header_length_over_the_limit_is_refused_without_allocating_it()
    {
        using var dir = new TempDir();
        string path = dir.File("big.safetensors");
        RawSafetensors.Write(path, "{}", [], headerLengthOverride: 200UL * 1024 * 1024);
        Assert.Equal($"Invalid safetensors file '{path}': header length 209715200 bytes exceeds the limit of 100 MB: corrupt or not a safetensors file.", OpenFails(path).Message);

        RawSafetensors.Write(path, "{}", [], headerLengthOverride: ulong.MaxValue);
        Assert.Contains("exceeds the limit of 100 MB", OpenFails(path).Message);
    }

    [Fact]
    public void Malformed_json_and_entries_are_refused()
    {
        using var dir = new TempDir();
        string path = dir.File("j.safetensors");
        RawSafetensors.Write(path, """{"a": {"dtype": "F32", """, []);
        Assert.StartsWith($"Invalid safetensors file '{path}': the header is not valid JSON", OpenFails(path).Message);

        RawSafetensors.Write(path, """{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}}""", []);
        Assert.Contains("tensor 'a': shape [-1] has an entry that is not a non-negative integer", OpenFails(path).Message);

        RawSafetensors.Write(path, """{"a":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}}""", new byte[8]);
        Assert.Contains("tensor 'a': data_offsets [8,4] are not 0 <= begin <= end", OpenFails(path).Message);

        RawSafetensors.Write(path, """{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}""", new byte[8]);
        Assert.Contains("the header lists 'a' twice", OpenFails(path).Message);

        RawSafetensors.Write(path, """{"__metadata__":{"n":1}}""", []);
        Assert.Contains("__metadata__ value 'n' is not a string", OpenFails(path).Message);
    }

    [Fact]
    public void A_missing_tensor_names_the_file()
    {
        using var dir = new TempDir();
        string path = dir.File("m.safetensors");
        SafetensorsWriter.Write(path, [SafetensorsWriteTensor.FromSingles("a", [1], [1])]);
        using var file = SafetensorsFile.Open(path);
        Assert.Equal($"No tensor 'nope' in '{path}'.", Assert.Throws<KeyNotFoundException>(() => file.Info("nope")).Message);
    }

    [Fact]
    public void A_folder_with_only_a_pickle_checkpoint_is_refused_clearly()
    {
        using var dir = new TempDir();
        File.WriteAllBytes(dir.File("pytorch_model.bin"), [0x80, 0x02]);
        File.WriteAllText(dir.File("config.json"), "{}");
        var e = Assert.Throws<InvalidDataException>(() => SafetensorsCheckpoint.Open(dir.Path));
        Assert.Equal($"'{dir.Path}' holds only a pickle checkpoint (pytorch_model.bin). PeftHost never loads pickle files, since unpickling can run arbitrary code: " +
            "convert it to safetensors first, e.g. in Python: model.save_pretrained(folder, safe_serialization=True).", e.Message);
        Assert.Contains("never loads pickle", Assert.Throws<InvalidDataException>(() => SafetensorsCheckpoint.Open(dir.File("pytorch_model.bin"))).Message);
    }

    [Fact]
    public void An_empty_folder_says_what_it_expected()
    {
        using var dir = new TempDir();
        var e = Assert.Throws<FileNotFoundException>(() => SafetensorsCheckpoint.Open(dir.Path));
        Assert.Equal($"No safetensors checkpoint in '{dir.Path}': expected model.safetensors or model.safetensors.index.json.", e.Message);
    }
}
