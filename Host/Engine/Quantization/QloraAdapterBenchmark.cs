using System.Diagnostics;
using System.Text.Json.Nodes;
using PeftHost.Engine.Peft;
using PeftHost.Engine.Plugins;
using PeftHost.Formats.BitsAndBytes;
using PeftHost.Models;
using PeftHost.Models.Quantization;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftHost.Engine.Quantization;

/// <summary>
/// The QLoRA benchmark's adapter part: the same LoRA adapter (r 16, alpha 32 on q, k, v, o, as the training
/// benchmark's) on a Llama preset in float32 (LoRA) and in NF4 with double quantization (QLoRA, prepared as
/// <see cref="KbitTraining.PrepareForKbitTraining"/>): the median time of an inference forward and of a training
/// step (forward, next-token cross-entropy, backward, AdamW) on one batch, the two setups interleaved round by round.
/// </summary>
public static class QloraAdapterBenchmark
{
    /// <summary>Figures of one model.</summary>
    /// <param name="Model">The preset, e.g. "llama medium".</param>
    /// <param name="Batch">Rows per forward and step.</param>
    /// <param name="Sequence">Tokens per row.</param>
    /// <param name="TrainableParameters">The adapter's parameters (the same on both bases).</param>
    /// <param name="LoraForward">Median inference forward with the adapter on the float32 base.</param>
    /// <param name="QloraForward">The same on the NF4 + double quantization base.</param>
    /// <param name="LoraStep">Median training step on the float32 base.</param>
    /// <param name="QloraStep">The same on the NF4 + double quantization base.</param>
    public sealed record Result(string Model, int Batch, int Sequence, long TrainableParameters,
        QloraBenchmark.Timing LoraForward, QloraBenchmark.Timing QloraForward, QloraBenchmark.Timing LoraStep, QloraBenchmark.Timing QloraStep)
    {
        /// <summary>QLoRA's forward time over LoRA's (wall; target at most 1.5).</summary>
        public double ForwardRatio => QloraForward.Seconds / LoraForward.Seconds;

        /// <summary>QLoRA's training-step time over LoRA's (wall; target at most 1.5).</summary>
        public double StepRatio => QloraStep.Seconds / LoraStep.Seconds;

        /// <summary>As <see cref="ForwardRatio"/> in process CPU time.</summary>
        public double ForwardCpuRatio => QloraForward.CpuSeconds / LoraForward.CpuSeconds;

        /// <summary>As <see cref="StepRatio"/> in process CPU time.</summary>
        public double StepCpuRatio => QloraStep.CpuSeconds / LoraStep.CpuSeconds;
    }

    /// <summary>The adapter: LoRA r 16, alpha 32 on q, k, v, o, no dropout.</summary>
    public static JsonObject AdapterConfig() => new()
    {
        ["peft_type"] = "LORA", ["task_type"] = "CAUSAL_LM", ["r"] = 16, ["lora_alpha"] = 32, ["lora_dropout"] = 0.0,
        ["target_modules"] = new JsonArray("q_proj", "k_proj", "v_proj", "o_proj"),
    };

    /// <summary>Runs it on the Llama presets of <paramref name="sizes"/>, with the plugins of <paramref name="pluginsFolder"/>.</summary>
    public static IReadOnlyList<Result> Run(IEnumerable<string> sizes, string pluginsFolder, int threads = 2, int rounds = 5, int batch = 4, int sequence = 128)
    {
        torch.set_num_threads(threads);
        using var catalog = new PluginCatalog(new PluginCatalogOptions { PluginsDirectory = pluginsFolder, HotReload = false });
        catalog.Scan();
        return [.. sizes.Select(size => RunOne(size, catalog, rounds, batch, sequence))];
    }

    private static Result RunOne(string size, PluginCatalog catalog, int rounds, int batch, int sequence)
    {
        var nf4dq = new BitsAndBytesConfig { LoadIn4Bit = true, QuantType = FourBitType.Nf4, UseDoubleQuant = true };
        (_, nn.Module full) = ModelPresets.Create("llama", size, seed: 0);
        (_, nn.Module quantized) = ModelPresets.Create("llama", size, seed: 0);
        PeftModel? lora = null, qlora = null;
        try
        {
            foreach (var p in full.parameters()) p.requires_grad = false;
            ModelQuantizer.Quantize(quantized, nf4dq);
            KbitTraining.PrepareForKbitTraining(quantized, useGradientCheckpointing: false); // LoRA beside it runs without
            lora = new PeftModel(full, catalog);
            qlora = new PeftModel(quantized, catalog);
            manual_seed(1);
            lora.AddAdapter("default", AdapterConfig());
            manual_seed(1);
            qlora.AddAdapter("default", AdapterConfig());
            PeftModel[] models = [lora, qlora];
            int vocab = ((ICausalLM)full).Config.VocabSize;
            using var gen = new torch.Generator(4321);
            using Tensor ids = torch.randint(0, vocab, [batch, sequence], dtype: ScalarType.Int64, generator: gen);
            var optimizers = models.Select(m => optim.AdamW(m.NamedParameters().Where(p => p.Parameter.requires_grad).Select(p => p.Parameter), lr: 1e-4)).ToArray();
            try
            {
                QloraBenchmark.Timing[] forward = Interleaved(models.Length, rounds, k => Forward(models[k], ids));
                QloraBenchmark.Timing[] step = Interleaved(models.Length, rounds, k => Step(models[k], optimizers[k], ids));
                long trainable = lora.TrainableParameterCounts().Trainable;
                return new Result($"llama {size}", batch, sequence, trainable, forward[0], forward[1], step[0], step[1]);
            }
            finally
            {
                foreach (var o in optimizers) o.Dispose();
            }
        }
        finally
        {
            qlora?.Dispose();
            lora?.Dispose();
            quantized.Dispose();
            full.Dispose();
        }
    }

    // no_grad rather than inference_mode: tensors a model caches in inference mode (rotary tables) could not be used by the training steps.
    private static void Forward(PeftModel model, Tensor ids)
    {
        using (torch.no_grad())
        using (NewDisposeScope())
            model.Run(() => ((ICausalLM)model.BaseModel).Forward(ids));
    }

    private static void Step(PeftModel model, OptimizerHelper optimizer, Tensor ids)
    {
        using (NewDisposeScope())
        {
            optimizer.zero_grad();
            model.Run(() =>
            {
                Tensor logits = ((ICausalLM)model.BaseModel).Forward(ids);
                long vocab = logits.shape[2];
                Tensor loss = nn.functional.cross_entropy(logits[.., ..^1, ..].reshape(-1, vocab), ids[.., 1..].reshape(-1));
                loss.backward();
                return loss;
            });
            optimizer.step();
        }
    }

    // One warm-up round, then rounds in which every setup runs once, the order rotating; medians per setup.
    private static QloraBenchmark.Timing[] Interleaved(int count, int rounds, Action<int> run)
    {
        var wall = Enumerable.Range(0, count).Select(_ => new List<double>()).ToArray();
        var cpu = Enumerable.Range(0, count).Select(_ => new List<double>()).ToArray();
        using var process = Process.GetCurrentProcess();
        for (int round = -1; round < rounds; round++)
        {
            for (int j = 0; j < count; j++)
            {
                int k = (j + Math.Max(round, 0)) % count;
                process.Refresh();
                TimeSpan cpuStart = process.TotalProcessorTime;
                long start = Stopwatch.GetTimestamp();
                run(k);
                double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
                process.Refresh();
                if (round < 0) continue;
                wall[k].Add(seconds);
                cpu[k].Add((process.TotalProcessorTime - cpuStart).TotalSeconds);
            }
        }
        return [.. Enumerable.Range(0, count).Select(k => new QloraBenchmark.Timing(Median(wall[k]), Median(cpu[k])))];
    }

    private static double Median(List<double> values) => values.Order().ElementAt(values.Count / 2);
}
