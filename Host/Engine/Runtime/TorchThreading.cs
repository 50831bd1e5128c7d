using System.Runtime.InteropServices;

namespace PeftHost.Engine.Runtime;

/// <summary>
/// Process settings libtorch's OpenMP runtime reads once, when it loads: call
/// <see cref="ConfigureBeforeTorchLoads"/> before the first TorchSharp call.
/// </summary>
public static class TorchThreading
{
    /// <summary>
    /// With <paramref name="passiveWaits"/>, sets OMP_WAIT_POLICY=PASSIVE and GOMP_SPINCOUNT=30000 in the native
    /// environment (each unless the user set it): a worker spins briefly (tens of microseconds) after a parallel
    /// region, then sleeps. It is a trade-off measured on 2 cores: libgomp's default (a long spin, then sleep) suits
    /// batch forward passes (PASSIVE alone made the small Llama's 4x128 forward ~10% slower), while token-by-token
    /// decoding, a long chain of tiny ops, measured 4x slower with long-spinning threads when other processes
    /// compete for the cores (about 24 against 110 tokens/s). Without any spin, though, every small op of a batched
    /// decode step wakes sleeping workers: the small Llama's 8-row step with 8 LoRA adapters took 23.5 ms, and 9.0 ms
    /// with the short spin (7.9 and 7.3 ms for one row); bench serve's concurrent run went from 239 to 325 tokens/s.
    /// So generation and serving ask for this; the rest keeps the default. .NET's Environment.SetEnvironmentVariable
    /// does not reach native getenv on Unix, hence setenv.
    /// </summary>
    public static void ConfigureBeforeTorchLoads(bool passiveWaits)
    {
        if (!passiveWaits) return;
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS()) return;
        SetUnlessGiven("OMP_WAIT_POLICY", "PASSIVE");
        SetUnlessGiven("GOMP_SPINCOUNT", ShortSpin);
    }

    // libgomp's spin iterations before a waiting worker sleeps, for generation and serving (its default is 300000).
    private const string ShortSpin = "30000";

    private static void SetUnlessGiven(string name, string value)
    {
        if (Environment.GetEnvironmentVariable(name) is not null) return;
        if (SetEnv(name, value, 0) != 0)
            throw new InvalidOperationException($"setenv({name}) failed (errno {Marshal.GetLastPInvokeError()}).");
    }

    // DllImport rather than LibraryImport: the source-generated form needs unsafe code in this project.
    [DllImport("libc", EntryPoint = "setenv", SetLastError = true)]
    private static extern int SetEnv([MarshalAs(UnmanagedType.LPUTF8Str)] string name, [MarshalAs(UnmanagedType.LPUTF8Str)] string value, int overwrite);
}
