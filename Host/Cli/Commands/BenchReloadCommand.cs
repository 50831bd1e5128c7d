using System.CommandLine;
using System.Text.Json.Nodes;
using PeftHost.Engine.Inference;

namespace PeftHost.Cli.Commands;

/// <summary>
/// `pefthost bench reload --count N [--json]`: the hot-reload benchmark (<see cref="ReloadBenchmark"/>)
/// between the installed LoRA plugin and its second build; prints its figures.
/// </summary>
internal static class BenchReloadCommand
{
    public static Command Create()
    {
        var count = (new Option<int>("--count") { Description = "Number of reloads.", DefaultValueFactory = _ => 100 }).AtLeast(1);
        var json = new Option<bool>("--json") { Description = "End with one JSON object on the last line of stdout." };
        var reload = new Command("reload", "Measure plugin hot reload: latency, leaked load contexts, memory growth.") { count, json };
        reload.SetAction(parse => Run(parse.GetValue(count), parse.GetValue(json)));
        return reload;
    }

    private static int Run(int count, bool json)
    {
        ReloadBenchmark.Result r = ReloadBenchmark.Run(Path.Combine(CliPaths.DefaultPlugins, "lora"), CliPaths.ReloadBenchLora, count);
        double growth = r.RssGrowthBytes / (1024.0 * 1024.0);
        Console.WriteLine($"reloads          {r.Reloads}");
        Console.WriteLine($"p50_ms           {r.P50Milliseconds:F2}");
        Console.WriteLine($"p95_ms           {r.P95Milliseconds:F2}");
        Console.WriteLine($"leaked_contexts  {r.LeakedContexts}  (of {r.RetiredVersions} unloaded versions)");
        Console.WriteLine($"rss_growth_mb    {growth:F1}");
        if (json)
        {
            var o = new JsonObject
            {
                ["reloads"] = r.Reloads, ["p50_ms"] = Math.Round(r.P50Milliseconds, 3), ["p95_ms"] = Math.Round(r.P95Milliseconds, 3),
                ["leaked_contexts"] = r.LeakedContexts, ["rss_growth_mb"] = Math.Round(growth, 2),
            };
            Console.WriteLine(o.ToJsonString());
        }
        return r.LeakedContexts == 0 ? ExitCodes.Success : ExitCodes.Failure;
    }
}
