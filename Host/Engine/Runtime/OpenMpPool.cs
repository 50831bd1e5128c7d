using System.Collections.Concurrent;
using System.Runtime.InteropServices;

namespace PeftHost.Engine.Runtime;

/// <summary>
/// Frees the OpenMP worker teams the calling thread's parallel ops were given. libgomp keeps one team per thread
/// that ever ran a parallel region, and once its threads outnumber the CPUs it stops spinning between regions (every
/// small op then wakes sleeping workers): on 2 cores, a model loaded on one thread and decoded on another ran the
/// small Llama's 8-row decode step in 19-23 ms instead of 12-13 ms. A thread that did torch work for another
/// (loading a served model, reloading a plugin under it) calls this when done; its next parallel op, if any, builds
/// a new team.
/// </summary>
public static class OpenMpPool
{
    private const int PauseHard = 2;   // omp_pause_hard

    // Each OpenMP runtime loaded so far (libtorch's libgomp carries a build hash in its name; llama.cpp's CPU backend
    // links the system's), by path: a runtime loaded later is found on a later call.
    private static readonly ConcurrentDictionary<string, PauseAll?> Runtimes = new(StringComparer.Ordinal);

    private delegate int PauseAll(int kind);

    /// <summary>Releases the calling thread's team in every loaded libgomp; false where none with omp_pause_resource_all is loaded.</summary>
    public static bool ReleaseCallingThread()
    {
        bool released = false;
        foreach (string path in LoadedRuntimes())
        {
            if (Runtimes.GetOrAdd(path, Find) is { } pause && pause(PauseHard) == 0) released = true;
        }
        return released;
    }

    private static IEnumerable<string> LoadedRuntimes()
    {
        if (!OperatingSystem.IsLinux()) return [];
        try
        {
            return [.. File.ReadLines("/proc/self/maps").Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
                .Where(f => f.Length >= 6 && Path.GetFileName(f[5]).StartsWith("libgomp", StringComparison.Ordinal)).Select(f => f[5]).Distinct(StringComparer.Ordinal)];
        }
        catch (IOException)
        {
            return [];   // no /proc: nothing known, nothing released
        }
    }

    private static PauseAll? Find(string path) =>
        NativeLibrary.TryLoad(path, out IntPtr library) && NativeLibrary.TryGetExport(library, "omp_pause_resource_all", out IntPtr export)
            ? Marshal.GetDelegateForFunctionPointer<PauseAll>(export)
            : null;
}
