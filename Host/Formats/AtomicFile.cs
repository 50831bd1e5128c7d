namespace PeftHost.Formats;

/// <summary>
/// Whole-file writes that never leave a half-written file behind: the content goes to a temporary
/// file in the same folder (same file system, so the rename is atomic), is flushed to disk, then
/// renamed over the target. On any failure the temporary file is removed and the target is untouched.
/// </summary>
public static class AtomicFile
{
    /// <summary>Writes <paramref name="path"/> through <paramref name="write"/>, atomically.</summary>
    public static void Write(string path, Action<Stream> write, int bufferSize = 1 << 16)
    {
        string full = Path.GetFullPath(path);
        string folder = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(folder);
        string temp = Path.Combine(folder, "." + Path.GetFileName(full) + "." + Guid.NewGuid().ToString("N")[..8] + ".tmp");
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize))
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        catch
        {
            File.Delete(temp);
            throw;
        }
    }

    /// <summary>Writes <paramref name="bytes"/> to <paramref name="path"/>, atomically.</summary>
    public static void WriteAllBytes(string path, byte[] bytes) => Write(path, s => s.Write(bytes));

    /// <summary>Copies <paramref name="source"/> to <paramref name="destination"/>, atomically.</summary>
    public static void Copy(string source, string destination) => Write(destination, s =>
    {
        using var from = new FileStream(source, FileMode.Open, FileAccess.Read);
        from.CopyTo(s);
    });
}
