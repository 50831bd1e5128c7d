using System.Runtime.InteropServices;

namespace PeftHost.Engine.Runtime;

/// <summary>
/// Process settings libtorch's OpenMP runtime reads once, when it loads: call
/// <see cref="ConfigureBeforeTorchLoads"/> before the first TorchSharp call.
/// </summary>
public static class TorchThreading
{
    /// <summary>
    /// With <paramref name="passiveWaits"/>, sets OMP_WAIT_POLICY=PASSIVE in the native environment
    /// unless the user set it. It is a trade-off measured on 2 cores: libgomp's default (spin, then
    /// sleep) suits batch forward passes (PASSIVE made the small Llama's 4x128 forward ~10% slower and
    /// the LoRA forward's extra small ops cost 5% instead of 2%), while token-by-token decoding, a long
    /// chain of tiny ops, measured 4x slower with spinning threads when other processes compete for
    /// the cores (about 24 against 110 tokens/s). So generation asks for PASSIVE; the rest keeps the
    /// default. .NET's Environment.SetEnvironmentVariable does not reach native getenv on Unix, hence setenv.
    /// </summary>
    public static void ConfigureBeforeTorchLoads(bool passiveWaits)
    {
        if (!passiveWaits) return;
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS()) return;
        if (Environment.GetEnvironmentVariable("OMP_WAIT_POLICY") is not null) return;
        if (SetEnv("OMP_WAIT_POLICY", "PASSIVE", 0) != 0)
            throw new InvalidOperationException($"setenv(OMP_WAIT_POLICY) failed (errno {Marshal.GetLastPInvokeError()}).");
    }

    // DllImport rather than LibraryImport: the source-generated form needs unsafe code in this project.
    [DllImport("libc", EntryPoint = "setenv", SetLastError = true)]
    private static extern int SetEnv([MarshalAs(UnmanagedType.LPUTF8Str)] string name, [MarshalAs(UnmanagedType.LPUTF8Str)] string value, int overwrite);
}
