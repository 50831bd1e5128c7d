using PeftHost.Engine.Export;
using PeftHost.Tests.Support;
using Xunit;

namespace PeftHost.Tests.Llama;

/// <summary>The GGUF cache: keyed by the sources' content, written atomically, safe under concurrent first use.</summary>
public sealed class GgufCacheTests : IDisposable
{
    private readonly ScratchFolder _scratch = new();

    public void Dispose() => _scratch.Dispose();

    [Fact]
    public void The_key_follows_the_content_of_the_sources_and_the_parameters()
    {
        string a = Path.Combine(_scratch.Path, "a.bin");
        File.WriteAllBytes(a, [1, 2, 3]);
        string k1 = GgufCache.Key("model", [a], "f32");
        File.SetLastWriteTimeUtc(a, DateTime.UtcNow.AddDays(-1));
        Assert.Equal(k1, GgufCache.Key("model", [a], "f32"));
        Assert.NotEqual(k1, GgufCache.Key("model", [a], "q8_0"));
        File.WriteAllBytes(a, [1, 2, 4]);
        Assert.NotEqual(k1, GgufCache.Key("model", [a], "f32"));
    }

    [Fact]
    public async Task Concurrent_first_uses_each_get_a_complete_file_and_leave_no_temporaries()
    {
        string source = Path.Combine(_scratch.Path, "src.bin");
        File.WriteAllBytes(source, [9]);
        var cache = new GgufCache(Path.Combine(_scratch.Path, "cache"));
        byte[] content = [.. Enumerable.Range(0, 1 << 20).Select(i => (byte)i)];
        int written = 0;
        Task<(string Path, bool Created)>[] runs = [.. Enumerable.Range(0, 4).Select(_ => Task.Run(() => cache.GetOrCreate("model", [source], "p", s =>
        {
            Interlocked.Increment(ref written);
            for (int off = 0; off < content.Length; off += 4096)
            {
                s.Write(content, off, 4096);
                Thread.Yield();
            }
        })))];
        (string Path, bool Created)[] results = await Task.WhenAll(runs);
        Assert.Single(results.Select(r => r.Path).Distinct());
        Assert.Equal(content, File.ReadAllBytes(results[0].Path));
        Assert.Single(Directory.GetFiles(cache.Directory));
        Assert.False(cache.GetOrCreate("model", [source], "p", _ => throw new InvalidOperationException("must not be written again")).Created);
        Assert.InRange(written, 1, 4);
    }

    [Fact]
    public void A_failed_export_leaves_nothing_in_the_cache()
    {
        string source = Path.Combine(_scratch.Path, "src.bin");
        File.WriteAllBytes(source, [9]);
        var cache = new GgufCache(Path.Combine(_scratch.Path, "cache"));
        Assert.Throws<InvalidDataException>(() => cache.GetOrCreate("model", [source], "p", s =>
        {
            s.Write([1, 2, 3]);
            throw new InvalidDataException("export failed");
        }));
        Assert.Empty(Directory.GetFiles(cache.Directory));
    }
}
