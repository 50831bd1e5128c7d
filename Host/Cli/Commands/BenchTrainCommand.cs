using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using PeftHost.Training.Benchmarks;

namespace PeftHost.Cli.Commands;

/// <summary>
/// `pefthost bench train [--json]`: training steps of the small Llama with LoRA (TrainingBenchmark),
/// each configuration in a child pefthost process of its own (so that its peak RSS is its own):
/// 4 x 128 with and without gradient checkpointing, 4 x 512 with and without, and a 200-step run for growth.
/// </summary>
internal static class BenchTrainCommand
{
    public static Command Create(Option<string> pluginsOption)
    {
        var json = new Option<bool>("--json") { Description = "End with one JSON object on the last line of stdout." };
        var threads = new Option<int>("--threads") { Description = "Intra-op threads.", DefaultValueFactory = _ => 2 };
        var steps = new Option<int>("--steps") { Description = "Steps per timed configuration.", DefaultValueFactory = _ => 12 };
        var growthSteps = new Option<int>("--growth-steps") { Description = "Steps of the RSS / live-tensor growth run.", DefaultValueFactory = _ => 200 };
        var child = new Option<string?>("--child") { Description = "Internal: run one configuration (batch,sequence,checkpointing,steps) and print its JSON.", Hidden = true };
        var command = new Command("train", "Small Llama (hidden 512, 8 layers), float32: LoRA training steps (r 16, q/k/v/o) at 4 x 128 and 4 x 512, with and without gradient checkpointing; peak RSS per configuration; growth over 200 steps.")
        {
            json, threads, steps, growthSteps, child,
        };
        command.SetAction(parse =>
        {
            string plugins = parse.GetValue(pluginsOption)!;
            int n = parse.GetValue(threads);
            if (parse.GetValue(child) is { } spec)
            {
                string[] p = spec.Split(',');
                TrainingBenchmark.Result r = TrainingBenchmark.Run(plugins, int.Parse(p[0], CultureInfo.InvariantCulture), int.Parse(p[1], CultureInfo.InvariantCulture),
                    p[2] == "1", n, int.Parse(p[3], CultureInfo.InvariantCulture));
                Console.WriteLine(r.ToJson().ToJsonString());
                return 0;
            }
            int s = parse.GetValue(steps);
            var configs = new (int Batch, int Seq, bool Ckpt, int Steps)[]
            {
                (4, 128, false, s), (4, 128, true, s), (4, 512, false, Math.Max(4, s / 2)), (4, 512, true, Math.Max(4, s / 2)), (4, 128, false, parse.GetValue(growthSteps)),
            };
            var results = new List<TrainingBenchmark.Result>();
            CultureInfo c = CultureInfo.InvariantCulture;
            Console.WriteLine(string.Create(c, $"model  llama small (hidden 512, 8 layers, vocab 8192), float32, {n} threads; LoRA r 16, alpha 32 on q, k, v, o; Trainer steps (forward, backward, AdamW)"));
            foreach (var cfg in configs)
            {
                TrainingBenchmark.Result r = Child(plugins, n, cfg.Batch, cfg.Seq, cfg.Ckpt, cfg.Steps);
                results.Add(r);
                Console.WriteLine(string.Create(c, $"{r.Batch}x{r.Sequence,-4} {(r.GradientCheckpointing ? "checkpointing" : "plain        ")} step {r.StepSeconds:F4} s  {r.TokensPerSecond,8:F0} tokens/s  peak RSS {r.PeakRssBytes / 1048576.0,7:F1} MiB (training added {(r.PeakRssBytes - r.RssBeforeTraining) / 1048576.0,6:F1})  ({r.Steps} steps)"));
            }
            TrainingBenchmark.Result growth = results[^1];
            double saving512 = 1 - results[3].PeakRssBytes / (double)results[2].PeakRssBytes;
            double added512 = 1 - (results[3].PeakRssBytes - results[3].RssBeforeTraining) / (double)(results[2].PeakRssBytes - results[2].RssBeforeTraining);
            Console.WriteLine(string.Create(c, $"gradient checkpointing at 4x512: peak RSS {results[2].PeakRssBytes / 1048576.0:F1} -> {results[3].PeakRssBytes / 1048576.0:F1} MiB ({saving512:P1} less; target >= 30 %); memory training added {added512:P1} less"));
            Console.WriteLine(string.Create(c, $"growth over {growth.Steps} steps (4x128): live tensors {growth.LiveTensorsEarly} -> {growth.LiveTensorsLate} (step {growth.EarlyStep} -> {growth.Steps}), RSS {growth.RssEarly / 1048576.0:F1} -> {growth.RssLate / 1048576.0:F1} MiB"));
            if (parse.GetValue(json))
            {
                var o = new JsonObject
                {
                    ["threads"] = n, ["configurations"] = new JsonArray([.. results.Take(4).Select(r => (JsonNode)r.ToJson())]), ["growth"] = growth.ToJson(),
                    ["checkpointing_peak_rss_saving_4x512"] = Math.Round(saving512, 4),
                    ["checkpointing_training_memory_saving_4x512"] = Math.Round(added512, 4),
                };
                Console.WriteLine(o.ToJsonString());
            }
            return 0;
        });
        return command;
    }

    // One configuration in a fresh pefthost process: its peak RSS is its own.
    private static TrainingBenchmark.Result Child(string plugins, int threads, int batch, int seq, bool ckpt, int steps)
    {
        var psi = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardOutput = true, RedirectStandardError = true };
        if (Path.GetFileNameWithoutExtension(Environment.ProcessPath!) == "dotnet") psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "pefthost.dll"));
        foreach (string a in new[] { "bench", "train", "--plugins", plugins, "--threads", threads.ToString(CultureInfo.InvariantCulture), "--child", string.Create(CultureInfo.InvariantCulture, $"{batch},{seq},{(ckpt ? 1 : 0)},{steps}") })
            psi.ArgumentList.Add(a);
        using Process p = Process.Start(psi)!;
        Task<string> err = p.StandardError.ReadToEndAsync();
        string output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"bench train child {batch}x{seq} failed ({p.ExitCode}): {err.Result}");
        return TrainingBenchmark.Result.FromJson(JsonNode.Parse(output.TrimEnd().Split('\n')[^1])!.AsObject());
    }
}
