using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using PeftHost.Engine.Inference;

namespace PeftHost.Cli.Commands;

/// <summary>
/// `pefthost bench memory [--rounds N] [--json]`: resident memory and live tensors over N adapter load/unload rounds and
/// N plugin reloads (<see cref="MemoryBenchmark"/>); exit 1 when live tensors grow or a load context leaks.
/// </summary>
internal static class BenchMemoryCommand
{
    public static Command Create()
    {
        var rounds = new Option<int>("--rounds") { Description = "Rounds per phase (adapter load/unload, plugin reload).", DefaultValueFactory = _ => 1000 }.AtLeast(1);
        var json = new Option<bool>("--json") { Description = "End with one JSON object on the last line of stdout." };
        var command = new Command("memory", "Tiny Llama: N rounds of loading and deleting a LoRA adapter, then N reloads of the LoRA plugin: RSS and live tensors (flat is the target).")
        {
            rounds, json,
        };
        command.SetAction(parse =>
        {
            int n = parse.GetValue(rounds);
            MemoryBenchmark.Result r = MemoryBenchmark.Run(Path.Combine(CliPaths.DefaultPlugins, "lora"), CliPaths.ReloadBenchLora, n, warmup: Math.Min(50, Math.Max(5, n / 10)), Print,
                adapterWarmup: Math.Min(2000, Math.Max(5, 2 * n)));
            Console.WriteLine($"leaked_contexts    {r.LeakedContexts}  (of {r.RetiredVersions} unloaded versions)");
            if (parse.GetValue(json))
            {
                var o = new JsonObject { ["rounds"] = n, ["leaked_contexts"] = r.LeakedContexts, ["retired_versions"] = r.RetiredVersions };
                foreach (MemoryBenchmark.Phase p in new[] { r.Adapters, r.Reloads })
                    o[p.Name] = new JsonObject
                    {
                        ["warmup_rounds"] = p.Warmup, ["seconds"] = Math.Round(p.Seconds, 3), ["live_tensors_start"] = p.LiveTensorsStart, ["live_tensors_end"] = p.LiveTensorsEnd,
                        ["rss_start_mb"] = Mb(p.RssStartBytes), ["rss_end_mb"] = Mb(p.RssEndBytes), ["rss_growth_mb"] = Mb(p.RssGrowthBytes),
                        ["rss_samples_mb"] = new JsonArray([.. p.RssSamplesBytes.Select(b => JsonValue.Create(Mb(b)))]),
                        ["managed_start_mb"] = Mb(p.ManagedStartBytes), ["managed_end_mb"] = Mb(p.ManagedEndBytes),
                        ["native_start_mb"] = p.NativeStartBytes is long ns ? Mb(ns) : null, ["native_end_mb"] = p.NativeEndBytes is long ne ? Mb(ne) : null,
                        ["native_bytes_per_round"] = p.NativeBytesPerRound, ["native_median_bytes_per_round_by_tenth"] = p.NativeMedianBytesPerRound,
                        ["native_samples_mb"] = new JsonArray([.. p.NativeSamplesBytes.Select(b => JsonValue.Create(Mb(b)))]), ["modules_per_round"] = p.ModulesPerRound,
                    };
                Console.WriteLine(o.ToJsonString());
            }
            bool flat = r.Adapters.LiveTensorGrowth <= 0 && r.Reloads.LiveTensorGrowth <= 0 && r.LeakedContexts == 0;
            return flat ? ExitCodes.Success : ExitCodes.Failure;
        });
        return command;
    }

    private static void Print(MemoryBenchmark.Phase p) => Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"{p.Name,-18} {p.Rounds} rounds (after {p.Warmup} warm-up) in {p.Seconds:F1} s: live tensors {p.LiveTensorsStart} -> {p.LiveTensorsEnd}, RSS {Mb(p.RssStartBytes):F1} -> {Mb(p.RssEndBytes):F1} MiB ({Mb(p.RssGrowthBytes):+0.0;-0.0} MiB; samples {string.Join(" ", p.RssSamplesBytes.Select(b => Mb(b).ToString("F1", CultureInfo.InvariantCulture)))}), managed heap {Mb(p.ManagedStartBytes):F1} -> {Mb(p.ManagedEndBytes):F1} MiB")
        + (p.NativeBytesPerRound is double perRound
            ? string.Create(CultureInfo.InvariantCulture, $", native heap {Mb(p.NativeStartBytes!.Value):F1} -> {Mb(p.NativeEndBytes!.Value):F1} MiB ({perRound:F0} bytes/round kept, median by tenth {p.NativeMedianBytesPerRound?.ToString("F0", CultureInfo.InvariantCulture) ?? "n/a"}; {p.ModulesPerRound} TorchSharp modules/round)")
            : ""));

    private static double Mb(long bytes) => Math.Round(bytes / 1048576.0, 2);
}
