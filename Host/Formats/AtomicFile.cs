using System.Runtime.InteropServices;
using System.Text;

namespace PeftHost.Formats;

/// <summary>
/// Whole-file writes that never leave a half-written file behind: the content goes to a temporary
/// file in the same folder (same file system, so the rename is atomic), is flushed to disk, then
/// renamed over the target. On any failure the temporary file is removed and the target is untouched;
/// a killed process leaves at most a hidden <c>.NAME.XXXXXXXX.tmp</c> beside it, never a partial target.
/// </summary>
public static class AtomicFile
{
    // Fault injection for tests (a stream that fails after N bytes, as a full disk does); per async flow,
    // so tests running in parallel do not see each other's faults.
    private static readonly AsyncLocal<Func<Stream, Stream>?> TemporaryStreamWrapper = new();

    /// <summary>Writes <paramref name="path"/> through <paramref name="write"/>, atomically.</summary>
    /// <exception cref="AtomicWriteException">An I/O error (a full disk, a missing permission): the message says that the previous file, if any, is unchanged.</exception>
    public static void Write(string path, Action<Stream> write, int bufferSize = 1 << 16)
    {
        string full = Path.GetFullPath(path);
        string folder = Path.GetDirectoryName(full)!;
        bool existed = File.Exists(full);
        string temp = Path.Combine(folder, "." + Path.GetFileName(full) + "." + Guid.NewGuid().ToString("N")[..8] + ".tmp");
        try
        {
            Directory.CreateDirectory(folder);
            using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize))
            {
                Stream stream = TemporaryStreamWrapper.Value?.Invoke(file) ?? file;
                write(stream);
                stream.Flush();
                file.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            DeleteTemporary(temp, e);
            throw new AtomicWriteException(full, existed, e);
        }
        catch
        {
            File.Delete(temp);
            throw;
        }
    }

    /// <summary>Writes <paramref name="bytes"/> to <paramref name="path"/>, atomically.</summary>
    /// <exception cref="AtomicWriteException">An I/O error; the previous file, if any, is unchanged.</exception>
    public static void WriteAllBytes(string path, byte[] bytes) => Write(path, s => s.Write(bytes));

    /// <summary>Copies <paramref name="source"/> to <paramref name="destination"/>, atomically.</summary>
    /// <exception cref="AtomicWriteException">An I/O error; the previous destination, if any, is unchanged.</exception>
    public static void Copy(string source, string destination) => Write(destination, s =>
    {
        using var from = new FileStream(source, FileMode.Open, FileAccess.Read);
        from.CopyTo(s);
    });

    /// <summary>Writes UTF-8 <paramref name="text"/> to <paramref name="path"/>, atomically.</summary>
    public static void WriteAllText(string path, string text) => WriteAllBytes(path, Encoding.UTF8.GetBytes(text));

    /// <summary>
    /// Flushes a folder's entries (names created or renamed in it) to disk, so that a rename into it
    /// survives a power cut. POSIX only (fsync of the directory); elsewhere the rename is already durable.
    /// </summary>
    public static void SyncDirectory(string folder)
    {
        if (OperatingSystem.IsWindows()) return;
        int fd = Posix.open(folder, 0 /* O_RDONLY */);
        if (fd < 0) throw new IOException($"Cannot open folder {folder} to flush it (errno {Marshal.GetLastPInvokeError()}).");
        try
        {
            if (Posix.fsync(fd) != 0) throw new IOException($"fsync of folder {folder} failed (errno {Marshal.GetLastPInvokeError()}).");
        }
        finally
        {
            _ = Posix.close(fd);
        }
    }

    private static class Posix
    {
        [DllImport("libc", SetLastError = true, CharSet = CharSet.Ansi, BestFitMapping = false)]
        public static extern int open([MarshalAs(UnmanagedType.LPStr)] string path, int flags);

        [DllImport("libc", SetLastError = true)]
        public static extern int fsync(int fd);

        [DllImport("libc", SetLastError = true)]
        public static extern int close(int fd);
    }

    /// <summary>
    /// Test seam: until the result is disposed, writes started on this async flow go through
    /// <paramref name="wrap"/>(the temporary file's stream), e.g. a stream that fails as a full disk does.
    /// </summary>
    internal static IDisposable WrapTemporaryStreams(Func<Stream, Stream> wrap)
    {
        Func<Stream, Stream>? previous = TemporaryStreamWrapper.Value;
        TemporaryStreamWrapper.Value = wrap;
        return new Restore(() => TemporaryStreamWrapper.Value = previous);
    }

    // The first error is the one reported; failing to remove the temporary file is added to it.
    private static void DeleteTemporary(string temp, Exception cause)
    {
        try
        {
            File.Delete(temp);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            cause.Data["AtomicFile.TemporaryLeft"] = $"{temp} ({e.Message})";
        }
    }

    private sealed class Restore(Action restore) : IDisposable
    {
        public void Dispose() => restore();
    }
}
