using System.Diagnostics;
using System.Text.Json.Nodes;
using PeftHost.Engine.Peft;
using PeftHost.Engine.Plugins;
using PeftHost.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Engine.Inference;

/// <summary>
/// The LoRA benchmark: the small Llama preset (float32, CPU), a batch of 4 x 128 tokens; forward time
/// of the base, of LoRA unmerged and merged (r 16, alpha 32 on q, k, v, o) as ratios to the base
/// (runs interleaved, medians); the time to load a saved adapter and to hotswap one; live tensors and
/// RSS before and after a series of hotswaps.
/// </summary>
public static class LoraBenchmark
{
    /// <summary>Figures of one run.</summary>
    /// <param name="Threads">Intra-op threads.</param>
    /// <param name="Base">Forward times of the base model.</param>
    /// <param name="Unmerged">Forward times with the adapter unmerged.</param>
    /// <param name="Merged">Forward times with the adapter merged.</param>
    /// <param name="LoadMilliseconds">Median time of <see cref="PeftModel.LoadAdapter"/> from a saved folder.</param>
    /// <param name="HotswapMilliseconds">Median time of a hotswap load.</param>
    /// <param name="Swaps">Hotswaps in the leak check.</param>
    /// <param name="LiveTensorsBefore">Live TorchSharp tensors before the hotswaps.</param>
    /// <param name="LiveTensorsAfter">Live TorchSharp tensors after them.</param>
    /// <param name="RssBefore">Process RSS (bytes) before the hotswaps.</param>
    /// <param name="RssAfter">Process RSS (bytes) after them.</param>
    public sealed record Result(int Threads, Timing Base, Timing Unmerged, Timing Merged, double LoadMilliseconds, double HotswapMilliseconds,
        int Swaps, long LiveTensorsBefore, long LiveTensorsAfter, long RssBefore, long RssAfter)
    {
        /// <summary>Unmerged forward time over the base's (wall time).</summary>
        public double UnmergedRatio => Unmerged.Seconds / Base.Seconds;

        /// <summary>Merged forward time over the base's (wall time).</summary>
        public double MergedRatio => Merged.Seconds / Base.Seconds;

        /// <summary>Unmerged over base in process CPU time, which waiting for other processes' load does not inflate.</summary>
        public double UnmergedCpuRatio => Unmerged.CpuSeconds / Base.CpuSeconds;

        /// <summary>Merged over base in process CPU time.</summary>
        public double MergedCpuRatio => Merged.CpuSeconds / Base.CpuSeconds;
    }

    /// <summary>Medians of one kind of forward.</summary>
    /// <param name="Seconds">Wall time.</param>
    /// <param name="CpuSeconds">Process CPU time (all threads).</param>
    public sealed record Timing(double Seconds, double CpuSeconds);

    /// <summary>The adapter config benchmarked (init_lora_weights false: B is not zero, so the adapter computes something real).</summary>
    public static JsonObject AdapterConfig() => new()
    {
        ["peft_type"] = "LORA", ["task_type"] = "CAUSAL_LM", ["r"] = 16, ["lora_alpha"] = 32, ["lora_dropout"] = 0.0,
        ["target_modules"] = new JsonArray("q_proj", "k_proj", "v_proj", "o_proj"), ["init_lora_weights"] = false,
    };

    /// <summary>Runs the benchmark with the LoRA plugin from <paramref name="pluginsFolder"/>.</summary>
    public static Result Run(string pluginsFolder, int threads = 2, int rounds = 15, int loads = 20, int swaps = 100)
    {
        torch.set_num_threads(threads);
        string scratch = Path.Combine(Path.GetTempPath(), "pefthost-bench-lora-" + Guid.NewGuid().ToString("N")[..8]);
        using var catalog = new PluginCatalog(new PluginCatalogOptions { PluginsDirectory = pluginsFolder, HotReload = false });
        catalog.Scan();
        (_, nn.Module plain) = ModelPresets.Create("llama", "small", seed: 0);
        (_, nn.Module adapted) = ModelPresets.Create("llama", "small", seed: 0);
        // Frozen as PeftModel freezes the other: the three forwards differ only by the adapter.
        foreach (var p in plain.parameters()) p.requires_grad = false;
        try
        {
            using var gen = new torch.Generator(1234);
            using Tensor batch = torch.randint(0, ((ICausalLM)plain).Config.VocabSize, [4, 128], dtype: ScalarType.Int64, generator: gen);
            using var peft = new PeftModel(adapted, catalog);
            torch.manual_seed(1);
            peft.AddAdapter("default", AdapterConfig());
            string first = Path.Combine(scratch, "a"), second = Path.Combine(scratch, "b");
            peft.SavePretrained(first);
            SaveAnother(plain, catalog, second);

            (Timing baseT, Timing unmergedT, Timing mergedT) = Forwards(plain, peft, batch, rounds);
            double load = LoadTime(plain, catalog, first, loads);

            peft.PrepareForHotswap(16);
            string[] folders = [second, first];
            double hotswap = Median(loads, i => peft.LoadAdapter(folders[i % 2], "default", hotswap: true));
            // The leak check: a warmed-up swap, then the counts around many more.
            peft.LoadAdapter(first, "default", hotswap: true);
            (long tensorsBefore, long rssBefore) = Counts();
            for (int i = 0; i < swaps; i++) peft.LoadAdapter(folders[i % 2], "default", hotswap: true);
            (long tensorsAfter, long rssAfter) = Counts();
            return new Result(threads, baseT, unmergedT, mergedT, load * 1e3, hotswap * 1e3, swaps, tensorsBefore, tensorsAfter, rssBefore, rssAfter);
        }
        finally
        {
            adapted.Dispose();
            plain.Dispose();
            if (Directory.Exists(scratch)) Directory.Delete(scratch, recursive: true);
        }
    }

    // Base, unmerged and merged in turn every round (the order rotates), so that load from the other
    // sessions on the machine falls on all three alike; medians per kind.
    private static (Timing Base, Timing Unmerged, Timing Merged) Forwards(nn.Module plain, PeftModel peft, Tensor batch, int rounds)
    {
        var times = new List<double>[3] { [], [], [] };
        var cpu = new List<double>[3] { [], [], [] };
        using var process = Process.GetCurrentProcess();
        void Forward(nn.Module m)
        {
            using (torch.inference_mode())
            using (NewDisposeScope()) ((ICausalLM)m).Forward(batch);
        }
        Action[] kinds =
        [
            () => Forward(plain),
            () => peft.Run(() => { Forward(peft.BaseModel); return 0; }),
            () => peft.Run(() => { Forward(peft.BaseModel); return 0; }),
        ];
        for (int round = -1; round < rounds; round++)
        {
            for (int j = 0; j < 3; j++)
            {
                int kind = (j + Math.Max(round, 0)) % 3;
                if (kind == 2) peft.Merge();
                process.Refresh();
                TimeSpan cpuStart = process.TotalProcessorTime;
                long start = Stopwatch.GetTimestamp();
                kinds[kind]();
                double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
                process.Refresh();
                double cpuSeconds = (process.TotalProcessorTime - cpuStart).TotalSeconds;
                if (kind == 2) peft.Unmerge();
                if (round >= 0) // round -1 warms up
                {
                    times[kind].Add(seconds);
                    cpu[kind].Add(cpuSeconds);
                }
            }
        }
        return (new(MedianOf(times[0]), MedianOf(cpu[0])), new(MedianOf(times[1]), MedianOf(cpu[1])), new(MedianOf(times[2]), MedianOf(cpu[2])));
    }

    // PEFT's load_adapter on a model that has no adapter yet: read the folder, inject the layers, fill them.
    private static double LoadTime(nn.Module model, PluginCatalog catalog, string folder, int loads)
    {
        using var peft = new PeftModel(model, catalog);
        return Median(loads, () => peft.LoadAdapter(folder, "load"), () => peft.DeleteAdapter("load"));
    }

    // A second adapter of the same shape with other weights, for the hotswaps.
    private static void SaveAnother(nn.Module model, PluginCatalog catalog, string folder)
    {
        using var peft = new PeftModel(model, catalog);
        torch.manual_seed(2);
        peft.AddAdapter("default", AdapterConfig());
        peft.SavePretrained(folder);
    }

    private static (long Tensors, long Rss) Counts()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        using var process = Process.GetCurrentProcess();
        process.Refresh();
        return (DisposeScopeManager.Statistics.ThreadTotalLiveCount, process.WorkingSet64);
    }

    private static double Median(int repeats, Action<int> action)
    {
        action(1);
        var times = new List<double>();
        for (int i = 0; i < repeats; i++)
        {
            long start = Stopwatch.GetTimestamp();
            action(i);
            times.Add(Stopwatch.GetElapsedTime(start).TotalSeconds);
        }
        return MedianOf(times);
    }

    // One untimed warm-up, then the median of the timed parts; the clean-up after each is not timed.
    private static double Median(int repeats, Action timed, Action cleanUp)
    {
        timed();
        cleanUp();
        var times = new List<double>();
        for (int i = 0; i < repeats; i++)
        {
            long start = Stopwatch.GetTimestamp();
            timed();
            times.Add(Stopwatch.GetElapsedTime(start).TotalSeconds);
            cleanUp();
        }
        return MedianOf(times);
    }

    private static double MedianOf(List<double> values)
    {
        values.Sort();
        return values[values.Count / 2];
    }
}
