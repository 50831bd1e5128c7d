using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using PeftHost.Engine.Peft;
using PeftHost.Engine.Plugins;
using PeftHost.Models;
using PeftHost.Training.Arguments;
using PeftHost.Training.Data;
using PeftHost.Training.Loop;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Training.Benchmarks;

/// <summary>
/// The training benchmark: the small Llama preset (hidden 512, 8 layers, vocab 8192), float32, CPU,
/// LoRA r 16, alpha 32 on q, k, v, o, trained by the <see cref="Trainer"/> itself (forward, backward,
/// clipping, AdamW, schedule) on random token rows: the median step time and tokens per second, the
/// process's peak RSS, and RSS and live TorchSharp tensors early and late in the run (a leak shows as growth).
/// Each configuration is meant to run in a process of its own, so its peak RSS is its own.
/// </summary>
public static class TrainingBenchmark
{
    /// <summary>The figures of one configuration.</summary>
    /// <param name="Batch">Rows per step.</param>
    /// <param name="Sequence">Tokens per row.</param>
    /// <param name="GradientCheckpointing">Whether layers were recomputed in backward.</param>
    /// <param name="Threads">Intra-op threads.</param>
    /// <param name="Steps">Optimiser steps run.</param>
    /// <param name="StepSeconds">Median wall time of a step (after the warm-up steps).</param>
    /// <param name="TokensPerSecond">Batch x sequence over the median step time.</param>
    /// <param name="PeakRssBytes">The process's peak resident memory (VmHWM).</param>
    /// <param name="RssBeforeTraining">RSS when training began (model, adapter and runtime loaded): the peak's part that training itself did not add.</param>
    /// <param name="EarlyStep">The step of the first counts.</param>
    /// <param name="RssEarly">RSS at <paramref name="EarlyStep"/>.</param>
    /// <param name="RssLate">RSS at the last step.</param>
    /// <param name="LiveTensorsEarly">Live TorchSharp tensors at <paramref name="EarlyStep"/>.</param>
    /// <param name="LiveTensorsLate">Live TorchSharp tensors at the last step.</param>
    public sealed record Result(int Batch, int Sequence, bool GradientCheckpointing, int Threads, int Steps, double StepSeconds, double TokensPerSecond,
        long PeakRssBytes, long RssBeforeTraining, int EarlyStep, long RssEarly, long RssLate, long LiveTensorsEarly, long LiveTensorsLate)
    {
        /// <summary>As a JSON object (one line of a child process's output).</summary>
        public JsonObject ToJson() => new()
        {
            ["batch"] = Batch, ["sequence"] = Sequence, ["gradient_checkpointing"] = GradientCheckpointing, ["threads"] = Threads, ["steps"] = Steps,
            ["step_seconds"] = Math.Round(StepSeconds, 5), ["tokens_per_second"] = Math.Round(TokensPerSecond, 1), ["peak_rss_bytes"] = PeakRssBytes,
            ["rss_before_training_bytes"] = RssBeforeTraining, ["early_step"] = EarlyStep, ["rss_early_bytes"] = RssEarly, ["rss_late_bytes"] = RssLate,
            ["live_tensors_early"] = LiveTensorsEarly, ["live_tensors_late"] = LiveTensorsLate,
        };

        /// <summary>Reads what <see cref="ToJson"/> wrote.</summary>
        public static Result FromJson(JsonObject o) => new(
            o["batch"]!.GetValue<int>(), o["sequence"]!.GetValue<int>(), o["gradient_checkpointing"]!.GetValue<bool>(), o["threads"]!.GetValue<int>(),
            o["steps"]!.GetValue<int>(), o["step_seconds"]!.GetValue<double>(), o["tokens_per_second"]!.GetValue<double>(), o["peak_rss_bytes"]!.GetValue<long>(),
            o["rss_before_training_bytes"]!.GetValue<long>(), o["early_step"]!.GetValue<int>(), o["rss_early_bytes"]!.GetValue<long>(), o["rss_late_bytes"]!.GetValue<long>(),
            o["live_tensors_early"]!.GetValue<long>(), o["live_tensors_late"]!.GetValue<long>());
    }

    /// <summary>The adapter benchmarked (LoRA r 16, alpha 32 on q, k, v, o, no dropout, as the lab's bench_peft.py).</summary>
    public static JsonObject AdapterConfig() => new()
    {
        ["peft_type"] = "LORA", ["task_type"] = "CAUSAL_LM", ["r"] = 16, ["lora_alpha"] = 32, ["lora_dropout"] = 0.0,
        ["target_modules"] = new JsonArray("q_proj", "k_proj", "v_proj", "o_proj"),
    };

    /// <summary>Runs one configuration in this process.</summary>
    public static Result Run(string pluginsFolder, int batch, int sequence, bool gradientCheckpointing, int threads, int steps, int warmup = 3)
    {
        torch.set_num_threads(threads);
        string output = Path.Combine(Path.GetTempPath(), "pefthost-bench-train-" + Guid.NewGuid().ToString("N")[..8]);
        using var catalog = new PluginCatalog(new PluginCatalogOptions { PluginsDirectory = pluginsFolder, HotReload = false });
        catalog.Scan();
        (_, nn.Module model) = ModelPresets.Create("llama", "small", seed: 0);
        try
        {
            using var peft = new PeftModel(model, catalog);
            manual_seed(1);
            peft.AddAdapter("default", AdapterConfig());
            int vocab = ((ICausalLM)model).Config.VocabSize;
            var rng = new Random(7);
            var rows = Enumerable.Range(0, batch).Select(i => new DatasetRow("bench", i + 1,
                new JsonObject { ["input_ids"] = new JsonArray([.. Enumerable.Range(0, sequence).Select(_ => (JsonNode)rng.Next(vocab))]) })).ToList();
            TrainingDataset data = TrainingDataset.FromRows("bench", rows, new ExampleEncoder(TaskKind.CausalLM, () => throw new InvalidOperationException(), vocab, sequence, true, false), packing: false);
            TrainingArguments args = TrainingArgumentsReader.Parse(new JsonObject
            {
                ["output_dir"] = output, ["max_steps"] = steps, ["per_device_train_batch_size"] = batch, ["learning_rate"] = 1e-4,
                ["lr_scheduler_type"] = "constant", ["logging_steps"] = steps, ["save_strategy"] = "no", ["max_grad_norm"] = 0,
                ["gradient_checkpointing"] = gradientCheckpointing,
            }, "bench");
            var trainer = new Trainer(peft, args, data, options: new TrainerOptions { WriteCurves = false });
            var probe = new Probe(Math.Min(steps, Math.Max(warmup + 1, steps / 10)));
            trainer.AddCallback(probe);
            trainer.Train();
            var timed = probe.StepSeconds.Skip(Math.Min(warmup, steps - 1)).Order().ToList();
            double median = timed.Count == 0 ? double.NaN : timed[timed.Count / 2];
            return new Result(batch, sequence, gradientCheckpointing, threads, steps, median, batch * sequence / median, PeakRss(),
                probe.RssStart, probe.EarlyStep, probe.RssEarly, probe.RssLate, probe.TensorsEarly, probe.TensorsLate);
        }
        finally
        {
            model.Dispose();
            if (Directory.Exists(output)) Directory.Delete(output, recursive: true);
        }
    }

    /// <summary>The process's peak resident set (VmHWM of /proc/self/status), or the current working set where that is not available.</summary>
    public static long PeakRss()
    {
        const string status = "/proc/self/status";
        if (File.Exists(status))
            foreach (string line in File.ReadLines(status))
                if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                    return long.Parse(line["VmHWM:".Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) * 1024;
        using var p = Process.GetCurrentProcess();
        return p.PeakWorkingSet64;
    }

    // Step times from the step-end callbacks; counts early and at the end.
    private sealed class Probe(int earlyStep) : TrainerCallback
    {
        private long _last = Stopwatch.GetTimestamp();

        public List<double> StepSeconds { get; } = [];

        public int EarlyStep { get; } = earlyStep;

        public long RssEarly { get; private set; }

        public long RssLate { get; private set; }

        public long TensorsEarly { get; private set; }

        public long TensorsLate { get; private set; }

        public long RssStart { get; private set; }

        public override void OnTrainBegin(TrainingArguments args, TrainerState state, TrainerControl control)
        {
            (_, RssStart) = Counts();
            _last = Stopwatch.GetTimestamp();
        }

        public override void OnStepEnd(TrainingArguments args, TrainerState state, TrainerControl control)
        {
            StepSeconds.Add(Stopwatch.GetElapsedTime(_last).TotalSeconds);
            if (state.GlobalStep == EarlyStep) (TensorsEarly, RssEarly) = Counts();
            if (state.GlobalStep == state.MaxSteps) (TensorsLate, RssLate) = Counts();
            _last = Stopwatch.GetTimestamp();
        }

        private static (long Tensors, long Rss) Counts()
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            GC.Collect();
            using var process = Process.GetCurrentProcess();
            return (DisposeScopeManager.Statistics.ThreadTotalLiveCount, process.WorkingSet64);
        }
    }
}
