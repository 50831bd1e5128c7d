using PeftHost.Formats.Gguf;
using PeftHost.Formats.Safetensors;
using PeftHost.Formats.Tests.Support;
using Xunit;

namespace PeftHost.Formats.Tests.CrashSafety;

/// <summary>
/// A write that runs out of space at any byte leaves the previous file exactly as it was, removes its
/// temporary file, and says so (AtomicWriteException, HResult of ENOSPC), for every writer of Formats.
/// The full disk is a stream injected through AtomicFile's seam, failing after N bytes.
/// </summary>
public sealed class DiskFullTests
{
    public static TheoryData<string> Writers => ["bytes", "copy", "safetensors", "safetensors-shards", "gguf"];

    [Theory]
    [MemberData(nameof(Writers))]
    public void A_write_that_runs_out_of_space_leaves_the_previous_files_intact(string writer)
    {
        using var dir = new TempDir();
        Write(writer, dir.Path, version: 1);
        Dictionary<string, byte[]> before = Snapshot(dir.Path);
        long smallest = before.Values.Min(b => (long)b.Length);
        // The disk fills during the k-th file the writer writes (shards, then the index), after N of its bytes.
        for (int k = 0; k < before.Count; k++)
        foreach (long capacity in new long[] { 0, 1, 7, 8, 9, 100, smallest / 2, smallest - 1 })
        {
            int opened = 0;
            using (AtomicFile.WrapTemporaryStreams(s => opened++ == k ? new DiskFullStream(s, capacity) : s))
            {
                var e = Assert.Throws<AtomicWriteException>(() => Write(writer, dir.Path, version: 2));
                Assert.Contains(DiskFullStream.Message, e.Message);
                Assert.Contains("The previous version of the file is unchanged", e.Message);
                Assert.StartsWith(dir.Path, e.TargetPath);
                Assert.True(e.PreviousFileKept);
                Assert.Equal(28, e.HResult);
            }
            Dictionary<string, byte[]> after = Snapshot(dir.Path);
            // Files written before the one that failed are complete new files; every other file is the old one.
            foreach ((string name, byte[] bytes) in after)
                Assert.True(bytes.AsSpan().SequenceEqual(before[name]) || IsComplete(writer, Path.Combine(dir.Path, name), version: 2),
                    $"{name} is neither the old file nor a complete new one after failing in file {k} at byte {capacity}");
            Assert.Equal(before.Keys.Order(), after.Keys.Order());
            // Put version 1 back for the next case.
            Write(writer, dir.Path, version: 1);
        }
        // With room again the new version is written.
        Write(writer, dir.Path, version: 2);
        foreach (string name in Snapshot(dir.Path).Keys) Assert.True(IsComplete(writer, Path.Combine(dir.Path, name), version: 2), name);
    }

    [Fact]
    public void A_first_write_that_runs_out_of_space_leaves_no_file()
    {
        using var dir = new TempDir();
        using (AtomicFile.WrapTemporaryStreams(s => new DiskFullStream(s, 10)))
        {
            var e = Assert.Throws<AtomicWriteException>(() => AtomicFile.WriteAllBytes(dir.File("new.bin"), new byte[100]));
            Assert.Contains("No file was left at that path", e.Message);
            Assert.False(e.PreviousFileKept);
        }
        Assert.Empty(Directory.GetFileSystemEntries(dir.Path));
    }

    /// <summary>Writes version <paramref name="version"/> of the writer's files into <paramref name="folder"/>.</summary>
    internal static void Write(string writer, string folder, int version)
    {
        switch (writer)
        {
            case "bytes":
                AtomicFile.WriteAllBytes(Path.Combine(folder, "data.bin"), Content(version, 5000));
                break;
            case "copy":
                string source = Path.Combine(Path.GetTempPath(), $"pefthost-copy-source-{Guid.NewGuid():N}.bin");
                File.WriteAllBytes(source, Content(version, 5000));
                try { AtomicFile.Copy(source, Path.Combine(folder, "data.bin")); }
                finally { File.Delete(source); }
                break;
            case "safetensors":
                SafetensorsWriter.Write(Path.Combine(folder, "model.safetensors"), Tensors(version), new Dictionary<string, string> { ["version"] = $"{version}" });
                break;
            case "safetensors-shards":
                SafetensorsWriter.WriteSharded(folder, Tensors(version), maxShardBytes: 600, new Dictionary<string, string> { ["version"] = $"{version}" });
                break;
            case "gguf":
                var gguf = new GgufWriter();
                gguf.SetMetadata("test.version", GgufValue.FromUInt32((uint)version));
                for (int t = 0; t < 3; t++) gguf.AddTensor($"t{t}", [64], GgmlType.F32, Values(version, t, 64));
                gguf.Write(Path.Combine(folder, "model.gguf"));
                break;
            default: throw new ArgumentException(writer);
        }
    }

    /// <summary>Whether <paramref name="path"/> is a whole, readable file of version <paramref name="version"/> (every value checked).</summary>
    internal static bool IsComplete(string writer, string path, int version)
    {
        try
        {
            switch (writer)
            {
                case "bytes" or "copy":
                    return File.ReadAllBytes(path).AsSpan().SequenceEqual(Content(version, 5000));
                case "safetensors" or "safetensors-shards" when path.EndsWith(".json", StringComparison.Ordinal):
                    using (SafetensorsCheckpoint c = SafetensorsCheckpoint.Open(path))
                        return c.Names.Count == 4 && c.Metadata.ContainsKey("total_size");
                case "safetensors" or "safetensors-shards":
                    using (SafetensorsFile f = SafetensorsFile.Open(path))
                        return f.Metadata["version"] == $"{version}" && f.Tensors.Count > 0 &&
                            f.Tensors.All(t => f.ReadSingles(t.Name).SequenceEqual(Values(version, int.Parse(t.Name[1..]), 40)));
                case "gguf":
                    using (GgufFile g = GgufFile.Open(path))
                        return g.GetMetadata("test.version").AsUInt64() == (ulong)version &&
                            Enumerable.Range(0, 3).All(t => g.ReadTensorFloats($"t{t}").SequenceEqual(Values(version, t, 64)));
                default: throw new ArgumentException(writer);
            }
        }
        catch (Exception e) when (e is InvalidDataException or GgufFormatException or IOException or KeyNotFoundException)
        {
            return false;
        }
    }

    internal static byte[] Content(int version, int length) => [.. Enumerable.Range(0, length).Select(i => (byte)(i * 7 + version))];

    internal static float[] Values(int version, int tensor, int count) => [.. Enumerable.Range(0, count).Select(i => version * 1000f + tensor * 100 + i)];

    private static List<SafetensorsWriteTensor> Tensors(int version) =>
        [.. Enumerable.Range(0, 4).Select(t => new SafetensorsWriteTensor($"t{t}", SafetensorsDType.F32, [40], s =>
        {
            foreach (float v in Values(version, t, 40)) s.Write(BitConverter.GetBytes(v));
        }))];

    internal static Dictionary<string, byte[]> Snapshot(string folder) =>
        Directory.GetFiles(folder).ToDictionary(f => Path.GetFileName(f), File.ReadAllBytes);
}
