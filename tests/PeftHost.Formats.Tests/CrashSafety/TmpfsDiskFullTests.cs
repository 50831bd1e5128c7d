using System.Diagnostics;
using PeftHost.Formats.Tests.Support;
using Xunit;

namespace PeftHost.Formats.Tests.CrashSafety;

/// <summary>
/// A real full disk: a 512 KiB tmpfs mounted for the test (root may mount; elsewhere the test is skipped at run
/// time with the reason mount gave). Every writer's second version does not fit; the first stays intact.
/// </summary>
public sealed class TmpfsDiskFullTests
{
    [Theory]
    [MemberData(nameof(DiskFullTests.Writers), MemberType = typeof(DiskFullTests))]
    public void A_write_that_fills_a_real_file_system_leaves_the_previous_files_intact(string writer)
    {
        using var mount = SmallTmpfs.TryMount(512 * 1024, out string? whyNot);
        if (mount is null) Assert.Skip($"no tmpfs could be mounted for a real full-disk test: {whyNot}");
        DiskFullTests.Write(writer, mount.Path, version: 1);
        Dictionary<string, byte[]> before = DiskFullTests.Snapshot(mount.Path);
        // Fill the file system but for a few bytes, so that no new version fits.
        string filler = Path.Combine(mount.Path, "filler");
        bool full = false;
        using (var f = new FileStream(filler, FileMode.CreateNew))
        {
            var block = new byte[4096];
            // The write that no longer fits ends the loop; a last buffered block may not fit on flush either.
            try { while (true) f.Write(block); }
            catch (IOException) { full = true; }
            try { f.Flush(); }
            catch (IOException) { full = true; }
        }
        Assert.True(full, "the filler never ran out of space");
        before["filler"] = File.ReadAllBytes(filler);
        var e = Assert.Throws<AtomicWriteException>(() => DiskFullTests.Write(writer, mount.Path, version: 2));
        Assert.Contains("No space left on device", e.Message);
        Assert.Contains("The previous version of the file is unchanged", e.Message);
        foreach ((string name, byte[] bytes) in DiskFullTests.Snapshot(mount.Path))
            Assert.True(before.TryGetValue(name, out byte[]? old) && old.AsSpan().SequenceEqual(bytes), $"{name} changed or appeared");
    }

    /// <summary>A tmpfs of a given size at a fresh folder, unmounted on dispose.</summary>
    private sealed class SmallTmpfs : IDisposable
    {
        private readonly TempDir _dir;

        private SmallTmpfs(TempDir dir) => _dir = dir;

        public string Path => _dir.Path;

        public static SmallTmpfs? TryMount(long bytes, out string? whyNot)
        {
            var dir = new TempDir();
            (int code, string output) = Run("mount", $"-t tmpfs -o size={bytes} pefthost-test-tmpfs {dir.Path}");
            if (code == 0)
            {
                whyNot = null;
                return new SmallTmpfs(dir);
            }
            dir.Dispose();
            whyNot = $"'mount -t tmpfs' exited {code}: {output.Trim()}";
            return null;
        }

        public void Dispose()
        {
            (int code, string output) = Run("umount", _dir.Path);
            if (code != 0) throw new IOException($"umount {_dir.Path} failed ({code}): {output}");
            _dir.Dispose();
        }

        private static (int, string) Run(string file, string args)
        {
            try
            {
                using Process p = Process.Start(new ProcessStartInfo(file, args) { RedirectStandardOutput = true, RedirectStandardError = true })!;
                string output = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
                p.WaitForExit();
                return (p.ExitCode, output);
            }
            catch (System.ComponentModel.Win32Exception e)
            {
                return (-1, e.Message);
            }
        }
    }
}
