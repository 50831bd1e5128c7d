using System.Runtime.InteropServices;

namespace PeftHost.Engine.Runtime;

/// <summary>
/// Frees the OpenMP worker team libtorch's first parallel op gave the calling thread. libgomp keeps one team per
/// thread that ever ran a parallel region, and once its threads outnumber the CPUs it stops spinning between
/// regions (every small op then wakes sleeping workers): on 2 cores, a model loaded on one thread and decoded on
/// another ran the small Llama's 8-row decode step in 19-23 ms instead of 12-13 ms. A thread that did torch work
/// for another (loading a served model, reloading a plugin under it) calls this when done; its next parallel op,
/// if any, builds a new team.
/// </summary>
public static class OpenMpPool
{
    private const int PauseHard = 2;   // omp_pause_hard
    // Found once libtorch has loaded libgomp; looked for again until then (a reload can come before any torch work).
    private static PauseAll? _pause;

    private delegate int PauseAll(int kind);

    /// <summary>Releases the calling thread's OpenMP team; false where no OpenMP runtime with omp_pause_resource_all is loaded.</summary>
    public static bool ReleaseCallingThread() => (_pause ??= Find()) is { } pause && pause(PauseHard) == 0;

    // The libgomp libtorch loaded (its file name carries a build hash), found among the process's mappings.
    private static PauseAll? Find()
    {
        if (!OperatingSystem.IsLinux()) return null;
        try
        {
            string? path = File.ReadLines("/proc/self/maps").Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
                .Where(f => f.Length >= 6 && Path.GetFileName(f[5]).StartsWith("libgomp", StringComparison.Ordinal)).Select(f => f[5]).FirstOrDefault();
            if (path is null || !NativeLibrary.TryLoad(path, out IntPtr library)) return null;
            return NativeLibrary.TryGetExport(library, "omp_pause_resource_all", out IntPtr export) ? Marshal.GetDelegateForFunctionPointer<PauseAll>(export) : null;
        }
        catch (IOException)
        {
            return null;   // no /proc: nothing known, nothing released
        }
    }
}
