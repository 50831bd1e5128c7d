using System.Diagnostics;
using PeftHost.Engine.Peft;
using PeftHost.Engine.Plugins;
using PeftHost.Engine.Runtime;
using PeftHost.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Engine.Inference;

/// <summary>
/// The memory benchmark: on the tiny Llama, N rounds of loading a saved LoRA adapter and deleting it again (each
/// round attaches and detaches the tuner), then N rounds of reloading the LoRA plugin between two builds while an
/// adapter is loaded, one forward per round. Resident memory and live TorchSharp tensors are taken after a warm-up
/// and every tenth of the rounds (after full collections); both must stay flat.
/// </summary>
public static class MemoryBenchmark
{
    /// <summary>One phase's figures.</summary>
    /// <param name="Name">"adapters" or "reloads".</param>
    /// <param name="Rounds">Rounds timed after the warm-up.</param>
    /// <param name="Seconds">Wall time of those rounds (collections for the samples included).</param>
    /// <param name="LiveTensorsStart">Live tensors of this thread after the warm-up.</param>
    /// <param name="LiveTensorsEnd">Live tensors after the last round.</param>
    /// <param name="RssStartBytes">Process RSS after the warm-up.</param>
    /// <param name="RssEndBytes">Process RSS after the last round.</param>
    /// <param name="RssSamplesBytes">RSS every tenth of the rounds (the last one included).</param>
    /// <param name="ManagedStartBytes">The managed heap after the warm-up (live objects, after full collections).</param>
    /// <param name="ManagedEndBytes">The managed heap after the last round: RSS growth beyond its growth is native (libtorch, the allocator, JIT code).</param>
    /// <param name="NativeStartBytes">Native bytes allocated and not freed after the warm-up (<see cref="NativeHeap"/>; null off glibc).</param>
    /// <param name="NativeEndBytes">The same after the last round: its growth is what native code keeps; RSS beyond it is the allocator's free memory.</param>
    /// <param name="ModulesPerRound">TorchSharp modules a round creates and disposes (the tuner layers and their containers and factors).</param>
    /// <param name="NativeSamplesBytes">Native bytes in use every tenth of the rounds, as <paramref name="RssSamplesBytes"/> (empty off glibc).</param>
    /// <param name="Warmup">Rounds run before the first sample, not counted.</param>
    public sealed record Phase(string Name, int Warmup, int Rounds, double Seconds, long LiveTensorsStart, long LiveTensorsEnd, long RssStartBytes, long RssEndBytes,
        IReadOnlyList<long> RssSamplesBytes, long ManagedStartBytes, long ManagedEndBytes, long? NativeStartBytes, long? NativeEndBytes, int ModulesPerRound,
        IReadOnlyList<long> NativeSamplesBytes)
    {
        /// <summary>Native bytes kept per round (null off glibc).</summary>
        public double? NativeBytesPerRound => NativeEndBytes - NativeStartBytes is long d ? (double)d / Rounds : null;

        /// <summary>
        /// The median over the tenths of the rounds of the native bytes kept per round (null off glibc or with fewer than ten
        /// rounds): a steady leak shows in every tenth, the allocator's occasional one-off growth (a new arena chunk of
        /// megabytes) in one, which would dominate <see cref="NativeBytesPerRound"/>.
        /// </summary>
        public double? NativeMedianBytesPerRound
        {
            get
            {
                // With ten rounds or more a sample closes every tenth (Rounds / 10 rounds each); a last, shorter one when
                // the rounds do not divide by ten is left out. Fewer rounds give fewer than ten samples.
                if (NativeStartBytes is not long start || NativeSamplesBytes.Count < 10) return null;
                int every = Rounds / 10;
                double[] perRound = [.. NativeSamplesBytes.Take(10).Select((sample, i) => (double)(sample - (i == 0 ? start : NativeSamplesBytes[i - 1])) / every)];
                Array.Sort(perRound);
                return (perRound[4] + perRound[5]) / 2;
            }
        }

        /// <summary>Live tensors gained over the rounds (0 when flat).</summary>
        public long LiveTensorGrowth => LiveTensorsEnd - LiveTensorsStart;

        /// <summary>RSS gained over the rounds.</summary>
        public long RssGrowthBytes => RssEndBytes - RssStartBytes;

        /// <summary>Managed heap gained over the rounds.</summary>
        public long ManagedGrowthBytes => ManagedEndBytes - ManagedStartBytes;
    }

    /// <summary>The figures of both phases and the load contexts of unloaded plugin versions still alive at the end.</summary>
    public sealed record Result(Phase Adapters, Phase Reloads, int LeakedContexts, int RetiredVersions);

    /// <summary>
    /// Runs both phases of <paramref name="rounds"/> rounds each, after warm-up rounds not counted: <paramref name="warmup"/>
    /// reloads, and <paramref name="adapterWarmup"/> adapter rounds (cheap, about 1.5 ms each: the C heap and RSS grow
    /// over the first two thousand or so, measured, then stay within a megabyte over 20 000).
    /// </summary>
    /// <param name="buildA">A folder with one build of the LoRA plugin (loaded first).</param>
    /// <param name="buildB">A folder with another build (another assembly version).</param>
    /// <param name="rounds">Rounds per phase, at least 1.</param>
    /// <param name="warmup">Reloads before the first sample (JIT, allocator pools, first loads).</param>
    /// <param name="progress">Told each phase as it ends.</param>
    /// <param name="adapterWarmup">Adapter load/delete rounds before the first sample.</param>
    /// <exception cref="InvalidOperationException">A reload failed or a forward changed.</exception>
    public static Result Run(string buildA, string buildB, int rounds = 1000, int warmup = 50, Action<Phase>? progress = null, int adapterWarmup = 2000)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(rounds, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(warmup);
        ArgumentOutOfRangeException.ThrowIfNegative(adapterWarmup);
        string root = Path.Combine(Path.GetTempPath(), "pefthost-bench-memory-" + Guid.NewGuid().ToString("N")[..12]);
        try
        {
            string plugins = Path.Combine(root, "plugins"), folder = Path.Combine(plugins, "lora"), adapter = Path.Combine(root, "adapter");
            CopyBuild(buildA, folder);
            using var catalog = new PluginCatalog(new PluginCatalogOptions { PluginsDirectory = plugins, HotReload = false });
            catalog.Scan();
            (_, nn.Module model) = ModelPresets.Create("llama", "tiny", seed: 0);
            using (model)
            using (var peft = new PeftModel(model, catalog))
            {
                var lm = (ICausalLM)model;
                using Tensor input = torch.arange(0, 16, dtype: ScalarType.Int64).reshape(2, 8);
                Tensor Forward() { using (no_grad()) return peft.Run(() => lm.Forward(input)); }
                torch.manual_seed(1);
                peft.AddAdapter("default", ReloadBenchmark.AdapterConfig());
                using Tensor reference = Forward();
                peft.SavePretrained(adapter);
                peft.DeleteAdapter("default");
                int baseModules = model.modules().Count();
                peft.LoadAdapter(adapter, "default");
                int tunerModules = model.modules().Count() - baseModules;
                peft.DeleteAdapter("default");

                Phase adapters = Measure("adapters", rounds, adapterWarmup, tunerModules, _ =>
                {
                    peft.LoadAdapter(adapter, "default");
                    Check(Forward(), reference, "after loading the adapter");
                    peft.DeleteAdapter("default");
                });
                progress?.Invoke(adapters);

                peft.LoadAdapter(adapter, "default");
                // A reload rebuilds the tuner layers with the new build's code.
                Phase reloads = Measure("reloads", rounds, warmup, tunerModules, i =>
                {
                    CopyBuild(i % 2 == 0 ? buildB : buildA, folder);
                    ReloadResult result = catalog.Reload(folder);
                    if (!result.Succeeded) throw new InvalidOperationException($"Reload {i + 1} failed: {result.Error}");
                    Check(Forward(), reference, $"after reload {i + 1}");
                });
                progress?.Invoke(reloads);
                peft.DeleteAdapter("default");
                return new Result(adapters, reloads, catalog.CountLeakedContexts(), catalog.RetiredCount);
            }
        }
        finally
        {
            if (Directory.Exists(root)) Directory.Delete(root, recursive: true);
        }
    }

    private static Phase Measure(string name, int rounds, int warmup, int modulesPerRound, Action<int> round)
    {
        for (int i = 0; i < warmup; i++) round(i);
        (long liveStart, long rssStart, long managedStart) = Counts();
        long? nativeStart = NativeHeap.InUseBytes();
        var samples = new List<long>();
        var nativeSamples = new List<long>();
        var clock = Stopwatch.StartNew();
        int every = Math.Max(1, rounds / 10);
        for (int i = 0; i < rounds; i++)
        {
            round(warmup + i);
            if ((i + 1) % every == 0 || i == rounds - 1)
            {
                samples.Add(Counts().Rss);
                if (NativeHeap.InUseBytes() is long native) nativeSamples.Add(native);
            }
        }
        clock.Stop();
        (long liveEnd, long rssEnd, long managedEnd) = Counts();
        long? nativeEnd = NativeHeap.InUseBytes();
        return new Phase(name, warmup, rounds, clock.Elapsed.TotalSeconds, liveStart, liveEnd, rssStart, rssEnd, samples, managedStart, managedEnd, nativeStart, nativeEnd, modulesPerRound, nativeSamples);
    }

    private static void Check(Tensor output, Tensor reference, string when)
    {
        using (output)
        using (Tensor delta = output - reference)
        using (Tensor magnitude = delta.abs())
        using (Tensor diff = magnitude.max())
        {
            double d = diff.item<float>();
            if (d > 1e-5) throw new InvalidOperationException($"The output changed {when}: max |diff| = {d}.");
        }
    }

    // After full collections, so that what finalizers free is not counted as held.
    private static (long Live, long Rss, long Managed) Counts()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        using var process = Process.GetCurrentProcess();
        process.Refresh();
        return (DisposeScopeManager.Statistics.ThreadTotalLiveCount, process.WorkingSet64, GC.GetTotalMemory(forceFullCollection: false));
    }

    private static void CopyBuild(string from, string to)
    {
        if (!Directory.Exists(from)) throw new DirectoryNotFoundException($"Plugin build not found: {from}. Build the solution first (dotnet build Host.sln -c Release).");
        Directory.CreateDirectory(to);
        foreach (string file in Directory.GetFiles(from))
            File.Copy(file, Path.Combine(to, Path.GetFileName(file)), overwrite: true);
    }
}
