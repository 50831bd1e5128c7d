using System.CommandLine;
using System.Diagnostics;
using System.Text.Json.Nodes;
using PeftHost.Models;
using PeftHost.Engine.Peft;
using PeftHost.Engine.Plugins;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Cli.Commands;

/// <summary>
/// `pefthost bench reload --count N [--json]`: applies LoRA to a small model, then swaps the LoRA
/// plugin N times between two builds with different assembly versions, each swap through the
/// watcher's path (<see cref="PluginCatalog.Reload"/>) but triggered directly, so the debounce is
/// not timed. Checks the output is identical after every swap.
/// </summary>
internal static class BenchReloadCommand
{
    public static Command Create()
    {
        var count = new Option<int>("--count") { Description = "Number of reloads.", DefaultValueFactory = _ => 100 };
        var json = new Option<bool>("--json") { Description = "End with one JSON object on the last line of stdout." };
        var reload = new Command("reload", "Measure plugin hot reload: latency, leaked load contexts, memory growth.") { count, json };
        reload.SetAction(parse => Run(parse.GetValue(count), parse.GetValue(json)));
        return reload;
    }

    private static int Run(int count, bool json)
    {
        if (count < 1) { Console.Error.WriteLine("--count must be at least 1."); return 2; }
        string root = CliPaths.TempFolder("bench-reload");
        try
        {
            string folder = Path.Combine(root, "plugins", "lora");
            string buildA = Path.Combine(CliPaths.DefaultPlugins, "lora");
            string buildB = CliPaths.ReloadBenchLora;
            CliPaths.CopyPlugin(buildA, folder);

            using var catalog = new PluginCatalog(new PluginCatalogOptions { PluginsDirectory = Path.Combine(root, "plugins"), HotReload = false });
            catalog.Scan();
            (_, nn.Module model) = ModelPresets.Create("llama", "tiny", seed: 0);
            var lm = (ICausalLM)model;
            using var peft = new PeftModel(model, catalog);
            peft.AddAdapter("default", new JsonObject
            {
                ["peft_type"] = "LORA", ["r"] = 8, ["lora_alpha"] = 16, ["target_modules"] = new JsonArray("q_proj", "v_proj"), ["init_lora_weights"] = false,
            });
            using Tensor input = torch.arange(0, 16, dtype: ScalarType.Int64).reshape(2, 8);
            Tensor Forward() { using (no_grad()) return peft.Run(() => lm.Forward(input)); }
            using Tensor reference = Forward();

            var times = new List<double>(count);
            long rssStart = 0;
            string? lastVersion = null;
            for (int i = 0; i < count; i++)
            {
                CliPaths.CopyPlugin(i % 2 == 0 ? buildB : buildA, folder);
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
            double p50 = Percentile(times, 0.50), p95 = Percentile(times, 0.95);
            double growth = (rssEnd - rssStart) / (1024.0 * 1024.0);
            Console.WriteLine($"reloads          {count}");
            Console.WriteLine($"p50_ms           {p50:F2}");
            Console.WriteLine($"p95_ms           {p95:F2}");
            Console.WriteLine($"leaked_contexts  {leaked}  (of {catalog.RetiredCount} unloaded versions)");
            Console.WriteLine($"rss_growth_mb    {growth:F1}");
            if (json)
            {
                var o = new JsonObject
                {
                    ["reloads"] = count, ["p50_ms"] = Math.Round(p50, 3), ["p95_ms"] = Math.Round(p95, 3),
                    ["leaked_contexts"] = leaked, ["rss_growth_mb"] = Math.Round(growth, 2),
                };
                Console.WriteLine(o.ToJsonString());
            }
            return leaked == 0 ? 0 : 1;
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
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
