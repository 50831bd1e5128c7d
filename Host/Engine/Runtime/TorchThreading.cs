using System.Runtime.InteropServices;

namespace PeftHost.Engine.Runtime;

/// <summary>
/// Process settings libtorch's OpenMP runtime reads once, when it loads: call
/// <see cref="ConfigureBeforeTorchLoads"/> before the first TorchSharp call.
/// </summary>
public static class TorchThreading
{
    /// <summary>
    /// Sets OMP_WAIT_POLICY=PASSIVE in the native environment unless the user set it. With the
    /// default (active spinning), threads waiting at the end of each small parallel op burn the
    /// cores the other threads need: on a busy 2-core machine token-by-token decoding measured
    /// 4x slower (about 24 against 110 tokens/s for the small Llama). .NET's
    /// Environment.SetEnvironmentVariable does not reach native getenv on Unix, hence setenv.
    /// </summary>
    public static void ConfigureBeforeTorchLoads()
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS()) return;
        if (Environment.GetEnvironmentVariable("OMP_WAIT_POLICY") is not null) return;
        if (SetEnv("OMP_WAIT_POLICY", "PASSIVE", 0) != 0)
            throw new InvalidOperationException($"setenv(OMP_WAIT_POLICY) failed (errno {Marshal.GetLastPInvokeError()}).");
    }

    // DllImport rather than LibraryImport: the source-generated form needs unsafe code in this project.
    [DllImport("libc", EntryPoint = "setenv", SetLastError = true)]
    private static extern int SetEnv([MarshalAs(UnmanagedType.LPUTF8Str)] string name, [MarshalAs(UnmanagedType.LPUTF8Str)] string value, int overwrite);
}
