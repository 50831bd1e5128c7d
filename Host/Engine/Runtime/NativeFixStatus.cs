using PeftHost.Formats.Elf;

namespace PeftHost.Engine.Runtime;

/// <summary>
/// Whether TorchSharp's native library in the application folder needed the Debian 12 fix
/// (shared/notes/torchsharp-glibc.md) and whether the build applied it.
/// </summary>
public static class NativeFixStatus
{
    /// <summary>The libstdc++ symbol version TorchSharp 0.107's native library asks for.</summary>
    public const string RequiredVersion = "GLIBCXX_3.4.32";

    /// <summary>"not-needed" | "applied" | "failed" (with the reason in <paramref name="detail"/>).</summary>
    public static string Check(string applicationFolder, out string detail)
    {
        if (!OperatingSystem.IsLinux()) { detail = "not Linux"; return "not-needed"; }
        string? libstdcxx = ElfVersionNeeds.FindSystemLibStdCxx();
        if (libstdcxx is not null && ElfVersionNeeds.LibraryDefinesVersion(libstdcxx, RequiredVersion))
        {
            detail = $"{libstdcxx} provides {RequiredVersion}";
            return "not-needed";
        }
        string library = Path.Combine(applicationFolder, "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        if (!File.Exists(library)) library = Path.Combine(applicationFolder, "libLibTorchSharp.so");
        if (!File.Exists(library)) { detail = $"libLibTorchSharp.so not found under {applicationFolder}"; return "failed"; }
        try
        {
            VersionNeedState state = ElfVersionNeeds.Inspect(library, RequiredVersion);
            detail = $"{library}: {RequiredVersion} {state.ToString().ToLowerInvariant()}";
            return state == VersionNeedState.Required ? "failed" : "applied";
        }
        catch (Exception e) when (e is IOException or InvalidDataException)
        {
            detail = $"{library}: {e.Message}";
            return "failed";
        }
    }
}
