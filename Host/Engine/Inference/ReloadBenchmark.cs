using System.Diagnostics;
using System.Text.Json.Nodes;
using PeftHost.Engine.Peft;
using PeftHost.Engine.Plugins;
using PeftHost.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Engine.Inference;

/// <summary>
/// The hot-reload benchmark: LoRA (r 8 on q, v) applied to the tiny Llama, then the LoRA plugin swapped
/// N times between two builds with different assembly versions, each swap through the watcher's path
/// (<see cref="PluginCatalog.Reload"/>) but triggered directly, so the debounce is not timed. The output
/// must stay identical after every swap; leaked load contexts and RSS growth are counted at the end.
/// </summary>
public static class ReloadBenchmark
{
    /// <summary>Figures of one run.</summary>
    /// <param name="Reloads">Reloads done.</param>
    /// <param name="P50Milliseconds">Median reload time.</param>
    /// <param name="P95Milliseconds">95th percentile reload time.</param>
    /// <param name="LeakedContexts">Load contexts of unloaded versions still alive after full collections.</param>
    /// <param name="RetiredVersions">Plugin versions unloaded.</param>
    /// <param name="RssGrowthBytes">Process RSS growth after the warm-up.</param>
    public sealed record Result(int Reloads, double P50Milliseconds, double P95Milliseconds, int LeakedContexts, int RetiredVersions, long RssGrowthBytes);

    /// <summary>The adapter config the swaps carry (init_lora_weights false: B is not zero, so the output depends on it).</summary>
    public static JsonObject AdapterConfig() => new()
    {
        ["peft_type"] = "LORA", ["r"] = 8, ["lora_alpha"] = 16, ["target_modules"] = new JsonArray("q_proj", "v_proj"), ["init_lora_weights"] = false,
    };

    /// <summary>Runs <paramref name="count"/> reloads alternating between two builds of the LoRA plugin.</summary>
    /// <param name="buildA">A folder with one build of the LoRA plugin (loaded first).</param>
    /// <param name="buildB">A folder with another build (another assembly version).</param>
    /// <param name="count">The number of reloads, at least 1.</param>
    /// <exception cref="InvalidOperationException">A reload failed, did not change the version, or changed the output.</exception>
    public static Result Run(string buildA, string buildB, int count)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        string root = Path.Combine(Path.GetTempPath(), "pefthost-bench-reload-" + Guid.NewGuid().ToString("N")[..12]);
        try
        {
            string plugins = Path.Combine(root, "plugins"), folder = Path.Combine(plugins, "lora");
            CopyBuild(buildA, folder);
            using var catalog = new PluginCatalog(new PluginCatalogOptions { PluginsDirectory = plugins, HotReload = false });
            catalog.Scan();
            (_, nn.Module model) = ModelPresets.Create("llama", "tiny", seed: 0);
            using (model)
            using (var peft = new PeftModel(model, catalog))
            {
                var lm = (ICausalLM)model;
                peft.AddAdapter("default", AdapterConfig());
                using Tensor input = torch.arange(0, 16, dtype: ScalarType.Int64).reshape(2, 8);
                Tensor Forward() { using (no_grad()) return peft.Run(() => lm.Forward(input)); }
                using Tensor reference = Forward();

                var times = new List<double>(count);
                long rssStart = 0;
                string? lastVersion = null;
                for (int i = 0; i < count; i++)
                {
                    CopyBuild(i % 2 == 0 ? buildB : buildA, folder);
                    ReloadResult result = catalog.Reload(folder);
                    if (!result.Succeeded) throw new InvalidOperationException($"Reload {i + 1} failed: {result.Error}");
                    if (result.NewVersion == lastVersion || result.NewVersion == result.OldVersion)
                        throw new InvalidOperationException($"Reload {i + 1} did not change the version ({result.OldVersion} -> {result.NewVersion}).");
                    lastVersion = result.NewVersion;
                    times.Add(result.Elapsed.TotalMilliseconds);
                    using Tensor output = Forward();
                    double diff = (output - reference).abs().max().item<float>();
                    if (diff != 0) throw new InvalidOperationException($"Output changed after reload {i + 1}: max |diff| = {diff}.");
                    if (i == Math.Min(1, count - 1)) rssStart = Rss(); // after warm-up: JIT and first loads
                }
                int leaked = catalog.CountLeakedContexts();
                long rssEnd = Rss();
                times.Sort();
                return new Result(count, Percentile(times, 0.50), Percentile(times, 0.95), leaked, catalog.RetiredCount, rssEnd - rssStart);
            }
        }
        finally
        {
            if (Directory.Exists(root)) Directory.Delete(root, recursive: true);
        }
    }

    // The way a user drops a new build in: its files copied over the plugin's folder.
    private static void CopyBuild(string from, string to)
    {
        if (!Directory.Exists(from)) throw new DirectoryNotFoundException($"Plugin build not found: {from}. Build the solution first (dotnet build Host.sln -c Release).");
        Directory.CreateDirectory(to);
        foreach (string file in Directory.GetFiles(from))
            File.Copy(file, Path.Combine(to, Path.GetFileName(file)), overwrite: true);
    }

    private static double Percentile(List<double> sorted, double q) => sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(q * sorted.Count) - 1)];

    private static long Rss()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        using var p = Process.GetCurrentProcess();
        p.Refresh();
        return p.WorkingSet64;
    }
}
