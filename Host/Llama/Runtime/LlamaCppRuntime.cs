using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using LLama.Native;

namespace PeftHost.Llama.Runtime;

/// <summary>
/// Loads llama.cpp's native library once per process (LLamaSharp picks the build for the CPU's best
/// level among runtimes/&lt;rid&gt;/native/{avx512,avx2,avx,noavx} beside the app) and routes its log:
/// debug and info lines are dropped, warnings and errors are kept so a failed load or decode can say
/// what llama.cpp said. A library that cannot be found or loaded is a <see cref="LlamaCppException"/>
/// naming the folder it was looked for in and the CPU's features.
/// </summary>
public static class LlamaCppRuntime
{
    private static readonly Lock Gate = new();
    private static readonly Queue<string> RecentMessages = new();
    private static bool _loaded;
    private static LlamaCppException? _failure;

    /// <summary>The folder LLamaSharp's loader searches: runtimes/&lt;rid&gt;/native under the app's base directory.</summary>
    public static string NativeFolder => Path.Combine(AppContext.BaseDirectory, "runtimes", RuntimeInformation.RuntimeIdentifier, "native");

    /// <summary>The x86 vector extensions this CPU has (llama.cpp's build levels), or the architecture elsewhere.</summary>
    public static string CpuFeatures => RuntimeInformation.ProcessArchitecture is Architecture.X64 or Architecture.X86
        ? string.Join(" ", new[] { ("avx", Avx.IsSupported), ("avx2", Avx2.IsSupported), ("fma", Fma.IsSupported), ("avx512f", Avx512F.IsSupported) }
            .Where(f => f.Item2).Select(f => f.Item1).DefaultIfEmpty("no AVX"))
        : RuntimeInformation.ProcessArchitecture.ToString().ToLowerInvariant();

    /// <summary>
    /// Loads the native library (once). Returns which build was loaded (<see cref="LoadedBuild"/>).
    /// </summary>
    /// <exception cref="LlamaCppException">No library could be loaded.</exception>
    public static string EnsureLoaded()
    {
        lock (Gate)
        {
            if (_failure is not null) throw _failure;
            if (!_loaded)
            {
                try
                {
                    if (!NativeLibraryConfig.LLama.LibraryHasLoaded)
                        NativeLibraryConfig.All.WithLogCallback(OnLog).WithAutoFallback(true);
                    NativeApi.llama_empty_call();
                    _loaded = true;
                }
                catch (Exception e) when (e is DllNotFoundException or TypeInitializationException or BadImageFormatException or EntryPointNotFoundException or LLama.Exceptions.RuntimeError)
                {
                    _failure = new LlamaCppException(
                        $"llama.cpp's native library (LLamaSharp.Backend.Cpu) could not be loaded from {NativeFolder} (CPU: {CpuFeatures}): {Innermost(e).Message} " +
                        "The build copies it there from the package for the building machine's runtime; build for this one with -p:RuntimeIdentifier=" +
                        RuntimeInformation.RuntimeIdentifier + ".", e);
                    throw _failure;
                }
            }
            return LoadedBuild ?? NativeFolder;
        }
    }

    /// <summary>Which build of the llama library was loaded ("cpu avx512", "cuda", ...), when LLamaSharp reports it.</summary>
    public static string? LoadedBuild
    {
        get
        {
            NativeLibraryMetadata? m = NativeApi.GetLoadedNativeLibrary(NativeLibraryName.LLama)?.Metadata;
            if (m is null) return null;
            return m.UseCuda ? "cuda" : m.UseVulkan ? "vulkan" : "cpu " + m.AvxLevel.ToString().ToLowerInvariant();
        }
    }

    /// <summary>llama.cpp's own description of the CPU features its build uses (llama_print_system_info).</summary>
    public static string SystemInfo()
    {
        EnsureLoaded();
        return Marshal.PtrToStringUTF8(NativeApi.llama_print_system_info())?.Trim() ?? "";
    }

    /// <summary>The warnings and errors llama.cpp logged last (at most a few), for error messages.</summary>
    public static string RecentLog()
    {
        lock (RecentMessages)
            return string.Join(" ", RecentMessages.Select(m => m.Trim()).Where(m => m.Length > 0));
    }

    /// <summary>Forgets the kept log lines (before an operation whose failure should quote only its own).</summary>
    public static void ClearLog()
    {
        lock (RecentMessages) RecentMessages.Clear();
    }

    private static void OnLog(LLamaLogLevel level, string message)
    {
        if (level is not (LLamaLogLevel.Warning or LLamaLogLevel.Error)) return;
        lock (RecentMessages)
        {
            RecentMessages.Enqueue(message);
            while (RecentMessages.Count > 8) RecentMessages.Dequeue();
        }
    }

    private static Exception Innermost(Exception e)
    {
        while (e.InnerException is not null) e = e.InnerException;
        return e;
    }
}
