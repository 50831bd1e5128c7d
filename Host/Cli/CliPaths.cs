namespace PeftHost.Cli;

/// <summary>Where the CLI finds what the build put beside it.</summary>
internal static class CliPaths
{
    /// <summary>The default plugins folder: plugins/ beside the executable.</summary>
    public static string DefaultPlugins => Path.Combine(AppContext.BaseDirectory, "plugins");

    /// <summary>The second build of the LoRA plugin (another assembly version), for reload benchmarks and the demo.</summary>
    public static string ReloadBenchLora => Path.Combine(AppContext.BaseDirectory, "reload-bench", "lora");

    /// <summary>Copies a plugin folder's files over another (the way a user drops a new build in).</summary>
    public static void CopyPlugin(string from, string to)
    {
        if (!Directory.Exists(from)) throw new DirectoryNotFoundException($"Plugin build not found: {from}. Build the solution first (dotnet build Host.sln -c Release).");
        Directory.CreateDirectory(to);
        foreach (string file in Directory.GetFiles(from))
            File.Copy(file, Path.Combine(to, Path.GetFileName(file)), overwrite: true);
    }

    /// <summary>A fresh temporary folder.</summary>
    public static string TempFolder(string purpose)
    {
        string dir = Path.Combine(Path.GetTempPath(), $"pefthost-{purpose}-{Environment.ProcessId}-{Guid.NewGuid():N}"[..48]);
        Directory.CreateDirectory(dir);
        return dir;
    }
}
