using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using PeftHost.Engine.Inference;
using PeftHost.Engine.Peft;
using PeftHost.Engine.Plugins;
using PeftHost.Models;
using PeftHost.Serving.OpenAi;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Serving.Benchmarks;

/// <summary>
/// The serving benchmark, on loopback only and bounded (a fixed number of requests, each with a timeout): the small
/// Llama preset (float32, CPU) served by <see cref="OpenAiServer"/> with a different LoRA adapter per client, greedy
/// completions of a fixed length streamed over HTTP. Three runs: the requests one at a time; the same requests from
/// concurrent clients (continuous batching); and concurrently again while adapters are hotswapped and the LoRA plugin
/// is reloaded. Every completion is compared with the one served alone with the adapter version it ran with: one that
/// equals neither version's is torn.
/// </summary>
public static class ServeBenchmark
{
    /// <summary>Figures of one run.</summary>
    /// <param name="Requests">Requests sent.</param>
    /// <param name="Errors">Requests that failed (HTTP error, error event, timeout).</param>
    /// <param name="Torn">Completions equal to neither adapter version's completion served alone.</param>
    /// <param name="Seconds">Wall time of the run.</param>
    /// <param name="Tokens">Completion tokens received.</param>
    /// <param name="TtftP50">Median time to first token, seconds.</param>
    /// <param name="TtftP99">99th percentile time to first token.</param>
    /// <param name="LatencyP50">Median request time (to the last token).</param>
    /// <param name="LatencyP99">99th percentile request time.</param>
    public sealed record Run(int Requests, int Errors, int Torn, double Seconds, int Tokens, double TtftP50, double TtftP99, double LatencyP50, double LatencyP99)
    {
        /// <summary>Completion tokens per second over the run.</summary>
        public double TokensPerSecond => Tokens / Seconds;
    }

    /// <summary>The three runs and what happened during the last.</summary>
    /// <param name="Clients">Concurrent clients (one adapter each).</param>
    /// <param name="TokensPerRequest">max_tokens of every request.</param>
    /// <param name="Threads">libtorch intra-op threads.</param>
    /// <param name="Serial">The requests one at a time.</param>
    /// <param name="Concurrent">The requests from concurrent clients.</param>
    /// <param name="WithSwaps">Concurrently, with hotswaps and a plugin reload.</param>
    /// <param name="Hotswaps">Hotswaps done during the last run.</param>
    /// <param name="Reloads">Plugin reloads done during the last run (succeeded).</param>
    public sealed record Result(int Clients, int TokensPerRequest, int Threads, Run Serial, Run Concurrent, Run WithSwaps, int Hotswaps, int Reloads)
    {
        /// <summary>Concurrent tokens/s over serial tokens/s (target: at least 3).</summary>
        public double Speedup => Concurrent.TokensPerSecond / Serial.TokensPerSecond;

        /// <summary>p99 request time with swaps over without (target: at most 1.5).</summary>
        public double P99Ratio => WithSwaps.LatencyP99 / Concurrent.LatencyP99;
    }

    private sealed record Job(int Index, int Client, string Prompt);

    private sealed record Outcome(bool Ok, string Text, int Tokens, double Ttft, double Seconds, int VersionAtStart, int VersionAtEnd);

    /// <summary>Runs the benchmark with the LoRA plugin from <paramref name="pluginsFolder"/> and its second build <paramref name="reloadBuild"/>.</summary>
    public static Result Execute(string pluginsFolder, string reloadBuild, int clients = 8, int requests = 64, int tokens = 32, int threads = 2, int hotswaps = 10,
        Action<string>? progress = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(clients, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(requests, clients);
        torch.set_num_threads(threads);
        // The clients block a pool thread each (a loop of sync-over-async requests); in one process with the server,
        // pool threads injected late (about two a second) would show as the server's latency.
        ThreadPool.GetMinThreads(out int workers, out int io);
        ThreadPool.SetMinThreads(Math.Max(workers, 2 * clients + 8), io);
        string root = Path.Combine(Path.GetTempPath(), "pefthost-bench-serve-" + Guid.NewGuid().ToString("N")[..10]);
        try
        {
            string plugins = Path.Combine(root, "plugins"), model = Path.Combine(root, "small-llama"), adapters = Path.Combine(root, "adapters");
            CopyFolder(Path.Combine(pluginsFolder, "lora"), Path.Combine(plugins, "lora"));
            ModelPresets.Write("llama", "small", model, seed: 0);
            using var catalog = new PluginCatalog(new PluginCatalogOptions { PluginsDirectory = plugins, HotReload = false });
            catalog.Scan();
            progress?.Invoke("writing adapters");
            WriteAdapters(model, catalog, adapters, clients);
            var options = new ServedModelOptions
            {
                ModelFolder = model, ServedModelName = "small-llama", MaxBatch = clients, MaxQueue = requests,
                Adapters = [.. Enumerable.Range(0, clients).Select(c => new AdapterSpec($"a{c}", Path.Combine(adapters, $"a{c}-v1")))],
            };
            using ServedModel served = ServedModel.Open(options, catalog);
            OpenAiServer server = OpenAiServer.StartAsync(served, new OpenAiServerOptions { Port = 0, AdapterRoot = adapters, RequestTimeoutSeconds = 600 }).GetAwaiter().GetResult();
            try
            {
                using var http = new HttpClient { BaseAddress = server.Address, Timeout = TimeSpan.FromMinutes(10) };
                Job[] jobs = [.. Enumerable.Range(0, requests).Select(i => new Job(i, i % clients, Prompt(i)))];
                var versions = new int[clients];
                // Warm-up, alone and then together: first-use allocations, the cache's growth, and the batched paths'
                // first runs (JIT, libtorch's first batch-size shapes) come before either measured run.
                Run(http, jobs[..clients], 1, versions);
                Run(http, jobs[..(2 * clients)], clients, versions);

                progress?.Invoke("serial");
                Outcome[] serial = Run(http, jobs, 1, versions);
                // The other version of every adapter, served alone too: the references a completion must equal.
                Swap(http, adapters, clients, versions, toVersion: 2);
                Outcome[] serialV2 = Run(http, jobs, 1, versions);
                Swap(http, adapters, clients, versions, toVersion: 1);
                string[][] references = [.. jobs.Select(j => new[] { serial[j.Index].Text, serialV2[j.Index].Text })];

                progress?.Invoke("concurrent");
                var sw = Stopwatch.StartNew();
                Outcome[] concurrent = Run(http, jobs, clients, versions);
                double concurrentSeconds = sw.Elapsed.TotalSeconds;

                progress?.Invoke("concurrent with hotswaps and a plugin reload");
                int swapsDone = 0, reloads = 0;
                sw.Restart();
                Task<Outcome[]> load = Task.Run(() => Run(http, jobs, clients, versions));
                var swapper = Task.Run(async () =>
                {
                    // A hotswap waits for its adapter's running requests (about a request's time), so the pauses between
                    // swaps add up to a third of the run only: all of them land while requests still stream.
                    for (int s = 0; s < hotswaps && !load.IsCompleted; s++)
                    {
                        await Task.Delay(TimeSpan.FromSeconds(Math.Max(concurrentSeconds, 1) / (3 * hotswaps))).ConfigureAwait(false);
                        int client = s % clients;
                        int next = versions[client] == 1 ? 2 : 1;
                        // The version flips when the server says the hotswap is done; requests admitted before it ran with the old one.
                        await LoadAsync(http, $"a{client}", Path.Combine(adapters, $"a{client}-v{next}"), hotswap: true).ConfigureAwait(false);
                        Interlocked.Exchange(ref versions[client], next);
                        swapsDone++;
                        if (s == hotswaps / 2)
                        {
                            CopyFolder(reloadBuild, Path.Combine(plugins, "lora"));
                            if (catalog.Reload(Path.Combine(plugins, "lora")).Succeeded) reloads++;
                        }
                    }
                });
                Outcome[] swapped = load.GetAwaiter().GetResult();
                swapper.GetAwaiter().GetResult();
                double swappedSeconds = sw.Elapsed.TotalSeconds;

                return new Result(clients, tokens, threads,
                    Figures(serial, serial.Sum(o => o.Seconds), references, jobs),
                    Figures(concurrent, concurrentSeconds, references, jobs),
                    Figures(swapped, swappedSeconds, references, jobs),
                    swapsDone, reloads);
            }
            finally
            {
                server.DisposeAsync().AsTask().GetAwaiter().GetResult();
            }
        }
        finally
        {
            try { Directory.Delete(root, recursive: true); }
            catch (IOException) { /* a file still mapped by the process: the temp cleaner takes it */ }
        }

        Outcome[] Run(HttpClient http, Job[] jobs, int parallel, int[] versions)
        {
            var results = new Outcome[jobs.Length];
            var byClient = jobs.GroupBy(j => parallel == 1 ? 0 : j.Client).ToList();
            Parallel.ForEach(byClient, new ParallelOptions { MaxDegreeOfParallelism = parallel }, group =>
            {
                foreach (Job j in group) results[j.Index] = Complete(http, j, tokens, versions).GetAwaiter().GetResult();
            });
            return results;
        }
    }

    // A torn completion equals neither the v1 nor the v2 completion of its prompt and adapter served alone.
    private static Run Figures(Outcome[] outcomes, double seconds, string[][] references, Job[] jobs)
    {
        Outcome[] ok = [.. outcomes.Where(o => o.Ok)];
        int torn = jobs.Count(j => outcomes[j.Index].Ok && !references[j.Index].Contains(outcomes[j.Index].Text));
        double[] ttft = [.. ok.Select(o => o.Ttft).Order()];
        double[] latency = [.. ok.Select(o => o.Seconds).Order()];
        return new Run(outcomes.Length, outcomes.Length - ok.Length, torn, seconds, ok.Sum(o => o.Tokens),
            Percentile(ttft, 0.5), Percentile(ttft, 0.99), Percentile(latency, 0.5), Percentile(latency, 0.99));
    }

    private static double Percentile(double[] sorted, double q) =>
        sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(q * sorted.Length) - 1)];

    private static async Task<Outcome> Complete(HttpClient http, Job job, int tokens, int[] versions)
    {
        var body = new JsonObject
        {
            ["model"] = $"a{job.Client}", ["prompt"] = job.Prompt, ["max_tokens"] = tokens, ["temperature"] = 0, ["ignore_eos"] = true,
            ["stream"] = true, ["stream_options"] = new JsonObject { ["include_usage"] = true },
        };
        int before = Volatile.Read(ref versions[job.Client]);
        var sw = Stopwatch.StartNew();
        double ttft = double.NaN;
        var text = new StringBuilder();
        int count = 0;
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/completions") { Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json") };
            using HttpResponseMessage response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode) return new Outcome(false, "", 0, 0, sw.Elapsed.TotalSeconds, before, before);
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync().ConfigureAwait(false));
            bool done = false;
            while (await reader.ReadLineAsync().ConfigureAwait(false) is string line)
            {
                if (!line.StartsWith("data: ", StringComparison.Ordinal)) continue;
                string data = line[6..];
                if (data == "[DONE]")
                {
                    done = true;
                    break;
                }
                using JsonDocument chunk = JsonDocument.Parse(data);
                JsonElement r = chunk.RootElement;
                if (r.TryGetProperty("error", out _)) return new Outcome(false, "", 0, 0, sw.Elapsed.TotalSeconds, before, before);
                if (r.TryGetProperty("usage", out JsonElement usage) && usage.ValueKind == JsonValueKind.Object) count = usage.GetProperty("completion_tokens").GetInt32();
                foreach (JsonElement c in r.GetProperty("choices").EnumerateArray())
                {
                    // The server streams a chunk per token (its text may be empty: the small preset's tokenizer covers a part of its vocabulary).
                    if (double.IsNaN(ttft)) ttft = sw.Elapsed.TotalSeconds;
                    text.Append(c.GetProperty("text").GetString());
                }
            }
            return new Outcome(done && count == tokens, text.ToString(), count, double.IsNaN(ttft) ? sw.Elapsed.TotalSeconds : ttft, sw.Elapsed.TotalSeconds, before, Volatile.Read(ref versions[job.Client]));
        }
        catch (Exception e) when (e is HttpRequestException or IOException or JsonException or TaskCanceledException)
        {
            return new Outcome(false, "", 0, 0, sw.Elapsed.TotalSeconds, before, before);
        }
    }

    private static async Task LoadAsync(HttpClient http, string name, string folder, bool hotswap)
    {
        var body = new JsonObject { ["lora_name"] = name, ["lora_path"] = folder, ["hotswap"] = hotswap };
        using var content = new StringContent(body.ToJsonString(), Encoding.UTF8, new MediaTypeHeaderValue("application/json"));
        using HttpResponseMessage response = await http.PostAsync("/v1/load_lora_adapter", content).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
            throw new InvalidOperationException($"hotswap of {name} failed: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync().ConfigureAwait(false)}");
    }

    private static void Swap(HttpClient http, string adapters, int clients, int[] versions, int toVersion)
    {
        for (int c = 0; c < clients; c++)
        {
            LoadAsync(http, $"a{c}", Path.Combine(adapters, $"a{c}-v{toVersion}"), hotswap: true).GetAwaiter().GetResult();
            versions[c] = toVersion;
        }
    }

    // Prompts of 20 to 40 words of a small fixed vocabulary: varied lengths, deterministic.
    private static string Prompt(int i)
    {
        string[] words = ["the", "model", "serves", "adapters", "while", "requests", "stream", "tokens", "over", "loopback", "plugins", "reload", "quietly", "and", "batches", "grow"];
        var rng = new Random(1000 + i);
        return string.Join(' ', Enumerable.Range(0, 20 + rng.Next(21)).Select(_ => words[rng.Next(words.Length)]));
    }

    // Two versions of one LoRA adapter per client (r 8 on q, k, v, o; B not zero), saved as PEFT folders.
    private static void WriteAdapters(string modelFolder, PluginCatalog catalog, string folder, int clients)
    {
        (_, nn.Module model) = ModelFactory.Load(modelFolder);
        using (model)
        using (var peft = new PeftModel(model, catalog))
        {
            for (int c = 0; c < clients; c++)
                for (int v = 1; v <= 2; v++)
                {
                    string name = $"a{c}v{v}";
                    torch.manual_seed(100 * c + v);
                    peft.AddAdapter(name, new JsonObject
                    {
                        ["peft_type"] = "LORA", ["task_type"] = "CAUSAL_LM", ["r"] = 8, ["lora_alpha"] = 16, ["lora_dropout"] = 0.0,
                        ["target_modules"] = new JsonArray("q_proj", "k_proj", "v_proj", "o_proj"), ["init_lora_weights"] = false,
                    });
                    using (Abstractions.State.AdapterState state = peft.ExportAdapter(name))
                        AdapterFolder.Write(Path.Combine(folder, $"a{c}-v{v}"), state, prefixKeys: true);
                    peft.DeleteAdapter(name);
                }
        }
    }

    private static void CopyFolder(string from, string to)
    {
        if (!Directory.Exists(from)) throw new DirectoryNotFoundException($"Plugin build not found: {from}. Build the solution first (dotnet build Host.sln -c Release).");
        Directory.CreateDirectory(to);
        foreach (string file in Directory.GetFiles(from)) File.Copy(file, Path.Combine(to, Path.GetFileName(file)), overwrite: true);
    }
}
