namespace PeftHost.Tests.Support;

/// <summary>The plugin builds the test build put beside the tests, and scratch plugin folders.</summary>
internal static class PluginDirs
{
    public static string Installed => Path.Combine(AppContext.BaseDirectory, "plugins");

    public static string LoraAlt => Path.Combine(AppContext.BaseDirectory, "reload-bench", "lora");

    public static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "fixture-plugins", name);

    /// <summary>A temporary plugins folder holding copies of the named installed plugins; deleted on dispose.</summary>
    public static ScratchFolder Scratch(params string[] installedIds)
    {
        var scratch = new ScratchFolder();
        foreach (string id in installedIds) Copy(Path.Combine(Installed, id), Path.Combine(scratch.Path, id));
        return scratch;
    }

    public static void Copy(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (string f in Directory.GetFiles(from)) File.Copy(f, Path.Combine(to, Path.GetFileName(f)), overwrite: true);
    }
}

internal sealed class ScratchFolder : IDisposable
{
    public ScratchFolder()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "pefthost-test-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    /// <summary>Copies a folder with its subfolders (e.g. a checkpoint into another output folder).</summary>
    public static void CopyTree(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (string file in Directory.GetFiles(from)) File.Copy(file, System.IO.Path.Combine(to, System.IO.Path.GetFileName(file)));
        foreach (string dir in Directory.GetDirectories(from)) CopyTree(dir, System.IO.Path.Combine(to, System.IO.Path.GetFileName(dir)));
    }

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); }
        catch (IOException) { /* a watcher may still hold it for a moment; the OS temp cleaner takes it */ }
    }
}
