using PeftHost.Abstractions.Layers;
using PeftHost.Engine.Runtime;
using TorchSharp.Modules;
using Xunit;
using static TorchSharp.torch;

namespace PeftHost.Tests.Reliability;

/// <summary>
/// TorchSharp 0.107's Linear (and Conv, Bilinear, PReLU) never frees its native libtorch module on Dispose (about
/// 0.7 KiB each): the adapter containers free it, so adapters created and deleted in a long-running process do not
/// grow it. Measured on the C allocator's bytes in use (glibc's mallinfo2), which free memory kept by the allocator
/// does not blur; this assembly's tests run one at a time. What stays (a few hundred bytes a round) is TorchSharp's
/// own: 64 bytes per custom module in LibTorchSharp's THSNN_custom_module, among others, which no caller can free.
/// </summary>
public sealed class NativeModuleReleaseTests
{
    [Fact]
    public void Adapter_entries_removed_or_disposed_free_their_native_modules()
    {
        Assert.NotNull(NativeHeap.InUseBytes());   // the project's platform is Linux on glibc (Debian 12)
        double removed = BytesKeptPerRound(dict =>
        {
            dict.Add("a", nn.Linear(64, 8, hasBias: false));
            dict.Add("b", nn.Linear(8, 64, hasBias: true));
            dict.Remove("a");
            dict.Remove("b");
        });
        double disposed = BytesKeptPerRound(dict =>
        {
            using var inner = new AdapterModuleDict<Linear>();
            inner.Add("a", nn.Linear(64, 8, hasBias: false));
            inner.Add("b", nn.Linear(8, 64, hasBias: true));
        });
        // The same two Linears disposed as TorchSharp does it (about 0.9 KiB each kept, measured).
        double plain = BytesKeptPerRound(_ =>
        {
            nn.Linear(64, 8, hasBias: false).Dispose();
            nn.Linear(8, 64, hasBias: true).Dispose();
        });
        Assert.True(plain > 1000, $"plain Linear disposal kept {plain:F0} bytes a round: TorchSharp's leak is gone (then NativeModuleRelease can go too)");
        Assert.True(removed < 0.4 * plain, $"{removed:F0} native bytes kept per add/remove round of two Linears, against {plain:F0} for Linears disposed plainly");
        Assert.True(disposed < 0.4 * plain, $"{disposed:F0} native bytes kept per round of a disposed container of two Linears, against {plain:F0} for Linears disposed plainly");
    }

    private static double BytesKeptPerRound(Action<AdapterModuleDict<Linear>> round)
    {
        const int Warmup = 300, Rounds = 3000;
        using var dict = new AdapterModuleDict<Linear>();
        for (int i = 0; i < Warmup; i++) round(dict);
        Settle();
        long before = NativeHeap.InUseBytes()!.Value;
        for (int i = 0; i < Rounds; i++) round(dict);
        Settle();
        return (double)(NativeHeap.InUseBytes()!.Value - before) / Rounds;
    }

    private static void Settle()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
    }
}
