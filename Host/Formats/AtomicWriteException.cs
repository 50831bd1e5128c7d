namespace PeftHost.Formats;

/// <summary>
/// An atomic write (<see cref="AtomicFile"/>) failed on I/O (a full disk, a permission, a vanished folder):
/// nothing was renamed over the target, so the file that was there before is unchanged (or there is still none).
/// <see cref="Exception.HResult"/> is the cause's (on Linux the errno, e.g. 28 for ENOSPC).
/// </summary>
public sealed class AtomicWriteException : IOException
{
    /// <summary>Creates the exception for <paramref name="path"/>.</summary>
    public AtomicWriteException(string path, bool previousFileKept, Exception cause)
        : base(Describe(path, previousFileKept, cause), cause)
    {
        TargetPath = path;
        PreviousFileKept = previousFileKept;
        HResult = cause.HResult;
    }

    /// <summary>The file that was being written.</summary>
    public string TargetPath { get; }

    /// <summary>Whether a previous version of the file existed (and is left as it was).</summary>
    public bool PreviousFileKept { get; }

    private static string Describe(string path, bool kept, Exception cause) =>
        $"Could not write '{path}': {cause.Message.TrimEnd('.')}. " +
        (kept ? "The previous version of the file is unchanged." : "No file was left at that path.") +
        (cause.Data["AtomicFile.TemporaryLeft"] is string left ? $" The temporary file could not be removed: {left}." : "");
}
