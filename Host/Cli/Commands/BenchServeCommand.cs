using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using PeftHost.Serving.Benchmarks;

namespace PeftHost.Cli.Commands;

/// <summary>`pefthost bench serve [--json]`: the serving benchmark (<see cref="ServeBenchmark"/>) on loopback; prints its figures.</summary>
internal static class BenchServeCommand
{
    public static Command Create(Option<string> pluginsOption)
    {
        var json = new Option<bool>("--json") { Description = "End with one JSON object on the last line of stdout." };
        var clients = new Option<int>("--clients") { Description = "Concurrent clients, each with its own LoRA adapter.", DefaultValueFactory = _ => 8 };
        var requests = new Option<int>("--requests") { Description = "Requests per run.", DefaultValueFactory = _ => 64 };
        var tokens = new Option<int>("--tokens") { Description = "New tokens per request.", DefaultValueFactory = _ => 32 };
        var threads = new Option<int>("--threads") { Description = "Intra-op threads.", DefaultValueFactory = _ => 2 };
        var command = new Command("serve", "Small Llama served on loopback, a LoRA adapter per client: concurrent vs one at a time, then with hotswaps and a plugin reload.")
        {
            json, clients, requests, tokens, threads,
        };
        command.SetAction(parse =>
        {
            if (parse.GetValue(clients) < 1 || parse.GetValue(requests) < parse.GetValue(clients) || parse.GetValue(tokens) < 1 || parse.GetValue(threads) < 1)
            {
                Console.Error.WriteLine("error: --clients, --tokens and --threads must be at least 1, --requests at least --clients.");
                return 2;
            }
            ServeBenchmark.Result r = ServeBenchmark.Execute(parse.GetValue(pluginsOption)!, CliPaths.ReloadBenchLora, parse.GetValue(clients), parse.GetValue(requests),
                parse.GetValue(tokens), parse.GetValue(threads), progress: p => Console.Error.WriteLine($"[{p}]"));
            CultureInfo c = CultureInfo.InvariantCulture;
            Console.WriteLine(string.Create(c, $"model              llama small, float32, {r.Threads} threads; {r.Clients} clients, a LoRA adapter each (r 8, q/k/v/o); {r.Serial.Requests} greedy requests of {r.TokensPerRequest} tokens, streamed"));
            foreach ((string name, ServeBenchmark.Run run) in new[] { ("serial", r.Serial), ("concurrent", r.Concurrent), ("with_swaps", r.WithSwaps) })
                Console.WriteLine(string.Create(c,
                    $"{name,-18} {run.TokensPerSecond:F1} tokens/s in {run.Seconds:F1} s; TTFT p50 {run.TtftP50 * 1000:F0} ms, p99 {run.TtftP99 * 1000:F0} ms; request p50 {run.LatencyP50:F2} s, p99 {run.LatencyP99:F2} s; {run.Errors} errors, {run.Torn} torn"));
            Console.WriteLine(string.Create(c, $"speedup            {r.Speedup:F2}x concurrent over serial (target >= 3)"));
            Console.WriteLine(string.Create(c, $"swaps              {r.Hotswaps} hotswaps, {r.Reloads} plugin reload; p99 {r.P99Ratio:F2}x without (target <= 1.5), {r.WithSwaps.Errors} errors, {r.WithSwaps.Torn} torn (target 0, 0)"));
            if (parse.GetValue(json))
            {
                JsonObject Run(ServeBenchmark.Run run) => new()
                {
                    ["requests"] = run.Requests, ["errors"] = run.Errors, ["torn"] = run.Torn, ["seconds"] = Math.Round(run.Seconds, 3), ["tokens"] = run.Tokens,
                    ["tokens_per_second"] = Math.Round(run.TokensPerSecond, 2), ["ttft_p50_s"] = Math.Round(run.TtftP50, 4), ["ttft_p99_s"] = Math.Round(run.TtftP99, 4),
                    ["latency_p50_s"] = Math.Round(run.LatencyP50, 4), ["latency_p99_s"] = Math.Round(run.LatencyP99, 4),
                };
                var o = new JsonObject
                {
                    ["clients"] = r.Clients, ["tokens_per_request"] = r.TokensPerRequest, ["threads"] = r.Threads,
                    ["serial"] = Run(r.Serial), ["concurrent"] = Run(r.Concurrent), ["with_swaps"] = Run(r.WithSwaps),
                    ["speedup"] = Math.Round(r.Speedup, 3), ["p99_ratio"] = Math.Round(r.P99Ratio, 3), ["hotswaps"] = r.Hotswaps, ["reloads"] = r.Reloads,
                };
                Console.WriteLine(o.ToJsonString());
            }
            bool ok = r.Serial.Errors + r.Concurrent.Errors + r.WithSwaps.Errors == 0 && r.Concurrent.Torn + r.WithSwaps.Torn == 0;
            return ok ? 0 : 1;
        });
        return command;
    }
}
