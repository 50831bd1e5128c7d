namespace PeftHost.Fuzz;

/// <summary>
/// Where targets put the files their parsers open: one folder per process and thread (the mutation
/// tests run in parallel), in memory where /dev/shm exists, removed when the process exits.
/// </summary>
public static class FuzzScratch
{
    private static readonly string Root = Path.Combine(
        Environment.GetEnvironmentVariable("PEFTHOST_FUZZ_SCRATCH") ?? (Directory.Exists("/dev/shm") ? "/dev/shm" : Path.GetTempPath()),
        $"pefthost-fuzz-{Environment.ProcessId}");

    [ThreadStatic]
    private static string? _folder;

    static FuzzScratch() => AppDomain.CurrentDomain.ProcessExit += (_, _) =>
    {
        if (Directory.Exists(Root)) Directory.Delete(Root, recursive: true);
    };

    /// <summary>This thread's folder (created on first use).</summary>
    public static string Folder
    {
        get
        {
            if (_folder is null)
            {
                _folder = Path.Combine(Root, $"t{Environment.CurrentManagedThreadId}");
                Directory.CreateDirectory(_folder);
            }
            return _folder;
        }
    }

    /// <summary>Writes <paramref name="bytes"/> to <paramref name="name"/> in this thread's folder, emptied first; returns the path.</summary>
    public static string Fresh(string name, byte[] bytes)
    {
        Clear();
        return Add(name, bytes);
    }

    /// <summary>Adds a file beside the others.</summary>
    public static string Add(string name, byte[] bytes)
    {
        string path = Path.Combine(Folder, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    /// <summary>Empties this thread's folder.</summary>
    public static void Clear()
    {
        foreach (string f in Directory.EnumerateFiles(Folder)) File.Delete(f);
    }
}
