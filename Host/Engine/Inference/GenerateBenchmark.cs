using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using PeftHost.Engine.Inference.Backends;
using PeftHost.Engine.Peft;
using PeftHost.Engine.Plugins;
using PeftHost.Formats.Gguf;
using PeftHost.Llama;
using PeftHost.Llama.Benchmarks;
using PeftHost.Models;
using PeftHost.Models.Generation;
using PeftHost.Vulkan.Kernels;
using PeftHost.Vulkan.Runtime;
using static TorchSharp.torch;

namespace PeftHost.Engine.Inference;

/// <summary>One configuration's figures in <see cref="GenerateBenchmark"/>.</summary>
/// <param name="Backend">torch, llama, vulkan, or llama-bare (LLamaSharp alone).</param>
/// <param name="Type">Weight type.</param>
/// <param name="Lora">Whether the LoRA adapter was applied unmerged.</param>
/// <param name="PrefillTokensPerSecond">Prompt tokens per second (time to the first new token).</param>
/// <param name="DecodeTokensPerSecond">New tokens per second after the first.</param>
/// <param name="WeightBytes">Bytes of weights a decode step reads.</param>
/// <param name="BandwidthShare">Weight bytes x decode tokens/s over the measured copy bandwidth (host, or the device's for vulkan).</param>
/// <param name="DispatchesPerToken">vulkan: dispatches of one decode step.</param>
public sealed record GenerateBenchmarkRow(string Backend, string Type, bool Lora, double PrefillTokensPerSecond, double DecodeTokensPerSecond, long WeightBytes,
    double BandwidthShare, int? DispatchesPerToken);

/// <summary>
/// `bench generate`: prefill and decode tokens/s of the same random-init Llama (make-model's preset)
/// on every backend and weight type (torch f32/bf16, llama f16/q8_0/q4_0, vulkan f16/q4_0), each with
/// and without an unmerged LoRA adapter (r 16 on q, k, v, o), against a bare LLamaSharp decode loop on
/// the same q4_0 file, and each decode's share of the memory bandwidth.
/// </summary>
public static class GenerateBenchmark
{
    // The llama-vs-bare comparison: rounds and new tokens per run.
    private const int CompareRounds = 5;
    // The LoRA cost: more rounds than the bare comparison, its ratio being the one near its target.
    private const int LoraCostRounds = 8;
    private const int CompareTokens = 128;

    /// <summary>Runs the configurations of <paramref name="backends"/>; <paramref name="log"/> gets a line per figure. Returns the JSON summary.</summary>
    public static JsonObject Run(string size, string pluginsFolder, IReadOnlyCollection<InferenceBackendKind> backends, Action<string> log, int promptTokens = 64, int newTokens = 32)
    {
        ArgumentNullException.ThrowIfNull(log);
        string folder = Path.Combine(Path.GetTempPath(), $"pefthost-bench-generate-{Guid.NewGuid():N}");
        try
        {
            string model = Path.Combine(folder, "model");
            ModelPresets.Write("llama", size, model, 0);
            string lora = WriteLora(model, Path.Combine(folder, "lora"), pluginsFolder, 16);
            string cache = Path.Combine(folder, "cache");
            int vocab = Models.Config.ModelConfigReader.Read(model).VocabSize;
            var random = new Random(1);
            int[] prompt = [.. Enumerable.Range(0, promptTokens).Select(_ => random.Next(vocab))];
            double host = HostCopyBandwidth();
            log($"llama {size}, prompt {promptTokens} tokens, {newTokens} new tokens (greedy), LoRA r 16 on q,k,v,o; host copy bandwidth {host / 1e9:F2} GB/s");
            double? device = null;
            if (backends.Contains(InferenceBackendKind.Vulkan))
            {
                using VulkanContext ctx = VulkanContext.Create(new VulkanContextOptions { Validation = VulkanValidation.Off });
                device = MemoryBandwidthBenchmark.Run(ctx).GigabytesPerSecond * 1e9;
                log($"vulkan device {ctx.Device.Name}: copy bandwidth {device / 1e9:F2} GB/s");
            }
            var rows = new List<GenerateBenchmarkRow>();
            int compareTokens = Math.Max(newTokens, CompareTokens);
            var adapter = new AdapterSpec("bench", lora);
            InferenceBackendOptions Options(InferenceBackendKind kind) => new()
            {
                Kind = kind, ModelFolder = model, Adapters = [adapter], PluginsFolder = pluginsFolder, CacheDirectory = cache,
                ContextSize = promptTokens + (kind == InferenceBackendKind.Llama ? compareTokens : newTokens) + 8,
            };
            void Add(GenerateBenchmarkRow row)
            {
                rows.Add(row);
                log(FormattableString.Invariant($"{row.Backend,-10} {row.Type,-5} {(row.Lora ? "+LoRA" : "base"),-5} prefill {row.PrefillTokensPerSecond,7:F1} tokens/s | decode {row.DecodeTokensPerSecond,7:F2} tokens/s | {row.BandwidthShare:P1} of bandwidth ({row.WeightBytes / 1e6:F0} MB/token)")
                    + (row.DispatchesPerToken is int d ? $" | {d} dispatches/token" : ""));
            }
            if (backends.Contains(InferenceBackendKind.Torch))
            {
                foreach ((string name, ScalarType dtype) in new[] { ("f32", ScalarType.Float32), ("bf16", ScalarType.BFloat16) })
                {
                    using var b = (TorchBackend)InferenceBackends.Open(Options(InferenceBackendKind.Torch) with { DType = dtype });
                    long bytes = b.Model.Model.parameters().Sum(p => p.numel() * p.ElementSize);
                    foreach (bool withLora in new[] { false, true })
                    {
                        (double pf, double dc) = Measure(b, prompt, newTokens, withLora);
                        Add(new GenerateBenchmarkRow("torch", name, withLora, pf, dc, bytes, bytes * dc / host, null));
                    }
                }
            }
            JsonObject? bare = null;
            var loraCost = new JsonObject();
            var loraAddedMs = new JsonObject();
            var loraAddedMsByRank = new JsonObject();
            var loraFactors = new JsonObject();
            if (backends.Contains(InferenceBackendKind.Llama))
            {
                foreach (GgmlType type in new[] { GgmlType.F16, GgmlType.Q8_0, GgmlType.Q4_0 })
                {
                    using var b = (LlamaBackend)InferenceBackends.Open(Options(InferenceBackendKind.Llama) with { Quant = type });
                    string t = GgmlTypeTraits.Name(type);
                    LoraRounds r = PairedRounds(b, prompt, compareTokens);
                    Add(new GenerateBenchmarkRow("llama", t, false, r.BasePrefill, r.BaseDecode, b.WeightBytes, b.WeightBytes * r.BaseDecode / host, null));
                    Add(new GenerateBenchmarkRow("llama", t, true, r.LoraPrefill, r.LoraDecode, b.WeightBytes, b.WeightBytes * r.LoraDecode / host, null));
                    loraCost[t] = r.Cost;
                    loraAddedMs[t] = r.AddedMs;
                    loraFactors[t] = GgmlTypeTraits.Name(b.Files.LoraFactors);
                    if (type == GgmlType.Q4_0)
                    {
                        // Against the bare loop: longer runs (a short one is mostly noise on a shared machine), ours and
                        // bare alternating so that both see the same machine state, best of each and the median pair ratio.
                        var options = new LlamaCppContextOptions { ContextSize = b.ContextSize };
                        (double bpf, double bdc, double ours) = (0, 0, 0);
                        var ratios = new List<double>();
                        for (int i = 0; i < CompareRounds; i++)
                        {
                            double o = Measure(b, prompt, compareTokens, false).Decode;
                            (double p1, double d1) = BareDecodeLoop.Run(b.Files.BaseGguf, prompt, compareTokens - 1, options, b.Context.DecodeThreads);
                            (bpf, bdc, ours) = (Math.Max(bpf, p1), Math.Max(bdc, d1), Math.Max(ours, o));
                            ratios.Add(o / d1);
                        }
                        double median = Median(ratios);
                        Add(new GenerateBenchmarkRow("llama-bare", t, false, bpf, bdc, b.WeightBytes, b.WeightBytes * bdc / host, null));
                        bare = new JsonObject { ["type"] = t, ["bare_decode_tokens_per_s"] = bdc, ["ours_decode_tokens_per_s"] = ours, ["slowdown"] = 1 - ours / bdc,
                            ["median_pair_slowdown"] = 1 - median, ["rounds"] = CompareRounds, ["decode_tokens"] = compareTokens - 1, ["target"] = 0.05,
                            ["decode_threads"] = b.Context.DecodeThreads };
                        log(FormattableString.Invariant($"llama q4_0 vs a bare LLamaSharp loop ({CompareRounds} alternating rounds of {compareTokens - 1} decode tokens): best {ours:F1} vs {bdc:F1} tokens/s ({(1 - ours / bdc):P1} slower), median pair {(1 - median):P1} slower (target at most 5 %), both decoding on {b.Context.DecodeThreads} of {Environment.ProcessorCount} threads (measured fastest)"));

                        // What the adapter's time per token follows: the same targets at other ranks (bytes and FLOPs
                        // scale with the rank; llama.cpp's 4 graph nodes per adapted weight do not).
                        loraAddedMsByRank["16"] = r.AddedMs;
                        foreach (int rank in new[] { 1, 64 })
                        {
                            string other = WriteLora(model, Path.Combine(folder, $"lora-r{rank}"), pluginsFolder, rank);
                            using var ranked = (LlamaBackend)InferenceBackends.Open(Options(InferenceBackendKind.Llama) with { Quant = type, Adapters = [new AdapterSpec("bench", other)] });
                            loraAddedMsByRank[rank.ToString(CultureInfo.InvariantCulture)] = PairedRounds(ranked, prompt, compareTokens).AddedMs;
                        }
                        log($"LoRA on llama q4_0 by rank, same targets (median of {LoraCostRounds} rounds each): "
                            + string.Join(", ", loraAddedMsByRank.Select(kv => FormattableString.Invariant($"r {kv.Key} +{kv.Value!.GetValue<double>():F3} ms/token"))));
                    }
                }
                log($"LoRA cost on llama decode (median of {LoraCostRounds} rounds of {compareTokens - 1} decode tokens, base and LoRA in turn, the order flipped every round): "
                    + string.Join(", ", loraCost.Select(kv => FormattableString.Invariant($"{kv.Key} {kv.Value!.GetValue<double>():P1} (+{loraAddedMs[kv.Key]!.GetValue<double>():F3} ms/token, {loraFactors[kv.Key]} factors)")))
                    + " (target at most 10 %)");
            }
            if (backends.Contains(InferenceBackendKind.Vulkan))
            {
                foreach (GgmlType type in new[] { GgmlType.F16, GgmlType.Q4_0 })
                {
                    using var b = (VulkanBackend)InferenceBackends.Open(Options(InferenceBackendKind.Vulkan) with { Quant = type });
                    foreach (bool withLora in new[] { false, true })
                    {
                        (double pf, double dc) = Measure(b, prompt, newTokens, withLora);
                        Add(new GenerateBenchmarkRow("vulkan", GgmlTypeTraits.Name(type), withLora, pf, dc, b.Model.WeightBytes, b.Model.WeightBytes * dc / device!.Value, b.Model.LastDispatchCount));
                    }
                }
            }
            return new JsonObject
            {
                ["size"] = size,
                ["prompt_tokens"] = promptTokens,
                ["new_tokens"] = newTokens,
                ["host_copy_gb_per_s"] = host / 1e9,
                ["device_copy_gb_per_s"] = device / 1e9,
                ["rows"] = new JsonArray([.. rows.Select(r => (JsonNode)new JsonObject
                {
                    ["backend"] = r.Backend, ["type"] = r.Type, ["lora"] = r.Lora, ["prefill_tokens_per_s"] = r.PrefillTokensPerSecond,
                    ["decode_tokens_per_s"] = r.DecodeTokensPerSecond, ["weight_bytes"] = r.WeightBytes, ["bandwidth_share"] = r.BandwidthShare,
                    ["dispatches_per_token"] = r.DispatchesPerToken,
                })]),
                ["llama_vs_bare"] = bare,
                ["llama_lora_cost"] = loraCost,
                ["llama_lora_added_ms_per_token"] = loraAddedMs,
                ["llama_lora_factor_types"] = loraFactors,
                ["llama_q4_0_lora_added_ms_by_rank"] = loraAddedMsByRank,
            };
        }
        finally
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
    }

    private sealed record LoraRounds(double BasePrefill, double BaseDecode, double LoraPrefill, double LoraDecode, double Cost, double AddedMs);

    // Base and LoRA alternating over long runs, so that both see the same machine state: the best of each, and the
    // median of the rounds' pair ratios (the cost) and of the time per token the adapter added.
    private static LoraRounds PairedRounds(IInferenceBackend b, int[] prompt, int tokens)
    {
        (double pf0, double dc0, double pf1, double dc1) = (0, 0, 0, 0);
        var costs = new List<double>();
        var addedMs = new List<double>();
        for (int i = 0; i < LoraCostRounds; i++)
        {
            // The order flips every round (base first, then LoRA first), so that whatever the first run of a
            // pair pays (a warmer or colder cache, a neighbour's burst) does not always fall on the same side.
            bool loraFirst = i % 2 == 1;
            var first = Measure(b, prompt, tokens, loraFirst);
            var second = Measure(b, prompt, tokens, !loraFirst);
            ((double p0, double d0), (double p1, double d1)) = loraFirst ? (second, first) : (first, second);
            (pf0, dc0, pf1, dc1) = (Math.Max(pf0, p0), Math.Max(dc0, d0), Math.Max(pf1, p1), Math.Max(dc1, d1));
            costs.Add(1 - d1 / d0);
            addedMs.Add(1000 / d1 - 1000 / d0);
        }
        return new LoraRounds(pf0, dc0, pf1, dc1, Median(costs), Median(addedMs));
    }

    // Time to the first token (prefill), then the rest (decode), after a short warm-up.
    private static (double Prefill, double Decode) Measure(IInferenceBackend backend, int[] prompt, int newTokens, bool withLora)
    {
        IReadOnlyList<AdapterScale>? adapters = withLora ? null : [];
        _ = backend.Generate(prompt, new GenerationOptions { MaxNewTokens = 2 }, adapters).ToList();
        using IEnumerator<int> tokens = backend.Generate(prompt, new GenerationOptions { MaxNewTokens = newTokens }, adapters).GetEnumerator();
        long start = Stopwatch.GetTimestamp();
        tokens.MoveNext();
        double first = Stopwatch.GetElapsedTime(start).TotalSeconds;
        int count = 0;
        start = Stopwatch.GetTimestamp();
        while (tokens.MoveNext()) count++;
        double rest = Stopwatch.GetElapsedTime(start).TotalSeconds;
        return (prompt.Length / first, count / rest);
    }

    private static double Median(List<double> values)
    {
        values.Sort();
        int n = values.Count;
        return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
    }

    // A LoRA adapter of rank r on q, k, v, o with random A and B (init_lora_weights false), saved as PEFT does.
    private static string WriteLora(string model, string folder, string pluginsFolder, int rank)
    {
        (_, nn.Module module) = ModelFactory.Load(model);
        using (module)
        {
            using var catalog = new PluginCatalog(new PluginCatalogOptions { PluginsDirectory = pluginsFolder, HotReload = false });
            catalog.Scan();
            using var peft = new PeftModel(module, catalog);
            peft.AddAdapter("default", new JsonObject
            {
                ["peft_type"] = "LORA", ["task_type"] = "CAUSAL_LM", ["r"] = rank, ["lora_alpha"] = 2 * rank, ["lora_dropout"] = 0.0,
                ["target_modules"] = new JsonArray("q_proj", "k_proj", "v_proj", "o_proj"), ["init_lora_weights"] = false,
            });
            peft.SavePretrained(folder);
        }
        return folder;
    }

    // Bytes moved per second (read + written, STREAM's convention) by a 256 MB copy, pages touched first, best of five.
    private static double HostCopyBandwidth()
    {
        var from = new byte[256 << 20];
        var to = new byte[256 << 20];
        Array.Fill(from, (byte)1);
        Array.Fill(to, (byte)2);
        double best = 0;
        for (int i = 0; i < 5; i++)
        {
            long start = Stopwatch.GetTimestamp();
            from.AsSpan().CopyTo(to);
            best = Math.Max(best, 2.0 * from.Length / Stopwatch.GetElapsedTime(start).TotalSeconds);
        }
        return best;
    }
}
