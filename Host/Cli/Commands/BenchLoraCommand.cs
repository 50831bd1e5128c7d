using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using PeftHost.Engine.Inference;

namespace PeftHost.Cli.Commands;

/// <summary>`pefthost bench lora [--json]`: LoRA forward overhead (unmerged, merged), adapter load and hotswap times, hotswap memory.</summary>
internal static class BenchLoraCommand
{
    public static Command Create(Option<string> pluginsOption)
    {
        var json = new Option<bool>("--json") { Description = "End with one JSON object on the last line of stdout." };
        var threads = (new Option<int>("--threads") { Description = "Intra-op threads.", DefaultValueFactory = _ => 2 }).AtLeast(1);
        var rounds = (new Option<int>("--rounds") { Description = "Interleaved forward rounds (medians are reported).", DefaultValueFactory = _ => 15 }).AtLeast(1);
        var command = new Command("lora", "Small Llama (hidden 512, 8 layers), float32, batch 4 x 128: base vs LoRA (r 16, alpha 32, q/k/v/o) unmerged and merged; load and hotswap.")
        {
            json, threads, rounds,
        };
        command.SetAction(parse =>
        {
            LoraBenchmark.Result r = LoraBenchmark.Run(parse.GetValue(pluginsOption)!, parse.GetValue(threads), parse.GetValue(rounds));
            CultureInfo c = CultureInfo.InvariantCulture;
            Console.WriteLine(string.Create(c, $"model              llama small, float32, {r.Threads} threads, batch 4 x 128; LoRA r 16, alpha 32 on q, k, v, o"));
            Console.WriteLine(string.Create(c, $"base_forward_s     {r.Base.Seconds:F4}   (CPU {r.Base.CpuSeconds:F4} s)"));
            Console.WriteLine(string.Create(c, $"unmerged_ratio     {r.UnmergedRatio:F3}   ({r.Unmerged.Seconds:F4} s; CPU-time ratio {r.UnmergedCpuRatio:F3}; target <= 1.03)"));
            Console.WriteLine(string.Create(c, $"merged_ratio       {r.MergedRatio:F3}   ({r.Merged.Seconds:F4} s; CPU-time ratio {r.MergedCpuRatio:F3}; target within 2% of base)"));
            Console.WriteLine(string.Create(c, $"load_adapter_ms    {r.LoadMilliseconds:F2}   (target < 10)"));
            Console.WriteLine(string.Create(c, $"hotswap_ms         {r.HotswapMilliseconds:F2}"));
            Console.WriteLine(string.Create(c, $"hotswap_x{r.Swaps}       live tensors {r.LiveTensorsBefore} -> {r.LiveTensorsAfter}, RSS {r.RssBefore / 1048576.0:F1} -> {r.RssAfter / 1048576.0:F1} MiB"));
            if (parse.GetValue(json))
            {
                var o = new JsonObject
                {
                    ["threads"] = r.Threads, ["base_seconds"] = Math.Round(r.Base.Seconds, 5), ["unmerged_seconds"] = Math.Round(r.Unmerged.Seconds, 5),
                    ["merged_seconds"] = Math.Round(r.Merged.Seconds, 5), ["unmerged_ratio"] = Math.Round(r.UnmergedRatio, 4), ["merged_ratio"] = Math.Round(r.MergedRatio, 4),
                    ["unmerged_cpu_ratio"] = Math.Round(r.UnmergedCpuRatio, 4), ["merged_cpu_ratio"] = Math.Round(r.MergedCpuRatio, 4),
                    ["load_adapter_ms"] = Math.Round(r.LoadMilliseconds, 3), ["hotswap_ms"] = Math.Round(r.HotswapMilliseconds, 3), ["swaps"] = r.Swaps,
                    ["live_tensors_before"] = r.LiveTensorsBefore, ["live_tensors_after"] = r.LiveTensorsAfter,
                    ["rss_before_bytes"] = r.RssBefore, ["rss_after_bytes"] = r.RssAfter,
                };
                Console.WriteLine(o.ToJsonString());
            }
            return 0;
        });
        return command;
    }
}
