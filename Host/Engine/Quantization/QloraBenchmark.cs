using System.Diagnostics;
using PeftHost.Abstractions.Layers;
using PeftHost.Formats.BitsAndBytes;
using PeftHost.Models;
using PeftHost.Models.Quantization;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Engine.Quantization;

/// <summary>
/// The QLoRA benchmark's base-model part (no adapters): for a Llama preset (random-initialised as
/// <c>make-model</c> makes it), the bits each quantized linear weight takes in NF4 and NF4 with double
/// quantization, the bytes the whole base holds in float32, NF4 and NF4 + double quantization (and the share
/// of the embeddings and head, which stay float32), the error of the NF4 logits against float32, and the
/// forward time of each (batch 4 x 128, float32 compute, runs interleaved, medians).
/// </summary>
public static class QloraBenchmark
{
    /// <summary>Figures of one model.</summary>
    /// <param name="Model">The preset, e.g. "llama medium".</param>
    /// <param name="Parameters">Parameters of the float32 base (a tied weight once).</param>
    /// <param name="QuantizedWeights">Weights in the quantized linear layers.</param>
    /// <param name="Nf4Bits">Bits per quantized weight in NF4: codes and float32 absmax.</param>
    /// <param name="Nf4DoubleQuantBits">Bits per quantized weight with double quantization: codes, 8-bit absmax, nested absmax and offsets (the 256-value map is shared).</param>
    /// <param name="Float32Bytes">Bytes of every tensor of the float32 base.</param>
    /// <param name="Nf4Bytes">Bytes of every tensor of the NF4 base.</param>
    /// <param name="Nf4DoubleQuantBytes">Bytes of every tensor of the NF4 + double quantization base.</param>
    /// <param name="EmbeddingAndHeadBytes">Bytes of the input embedding and the output head (float32 in all three).</param>
    /// <param name="Nf4LogitsMaxError">Largest |NF4 logit - float32 logit|.</param>
    /// <param name="Nf4LogitsMeanError">Mean |NF4 logit - float32 logit|.</param>
    /// <param name="Nf4DoubleQuantLogitsMaxError">As <paramref name="Nf4LogitsMaxError"/> with double quantization.</param>
    /// <param name="Nf4DoubleQuantLogitsMeanError">As <paramref name="Nf4LogitsMeanError"/> with double quantization.</param>
    /// <param name="LogitsStd">Standard deviation of the float32 logits (the scale the errors compare to).</param>
    /// <param name="Float32Forward">Median forward time of the float32 base.</param>
    /// <param name="Nf4Forward">Median forward time of the NF4 base.</param>
    /// <param name="Nf4DoubleQuantForward">Median forward time of the NF4 + double quantization base.</param>
    public sealed record ModelResult(string Model, long Parameters, long QuantizedWeights, double Nf4Bits, double Nf4DoubleQuantBits,
        long Float32Bytes, long Nf4Bytes, long Nf4DoubleQuantBytes, long EmbeddingAndHeadBytes,
        double Nf4LogitsMaxError, double Nf4LogitsMeanError, double Nf4DoubleQuantLogitsMaxError, double Nf4DoubleQuantLogitsMeanError, double LogitsStd,
        Timing Float32Forward, Timing Nf4Forward, Timing Nf4DoubleQuantForward)
    {
        /// <summary>The embeddings' and head's share of the float32 base.</summary>
        public double EmbeddingShareOfFloat32 => (double)EmbeddingAndHeadBytes / Float32Bytes;

        /// <summary>The embeddings' and head's share of the NF4 + double quantization base.</summary>
        public double EmbeddingShareOfNf4DoubleQuant => (double)EmbeddingAndHeadBytes / Nf4DoubleQuantBytes;

        /// <summary>NF4 forward time over float32's (wall time).</summary>
        public double Nf4ForwardRatio => Nf4Forward.Seconds / Float32Forward.Seconds;

        /// <summary>NF4 + double quantization forward time over float32's (wall time).</summary>
        public double Nf4DoubleQuantForwardRatio => Nf4DoubleQuantForward.Seconds / Float32Forward.Seconds;

        /// <summary>NF4 over float32 in process CPU time, which other processes' load inflates less.</summary>
        public double Nf4ForwardCpuRatio => Nf4Forward.CpuSeconds / Float32Forward.CpuSeconds;

        /// <summary>NF4 + double quantization over float32 in process CPU time.</summary>
        public double Nf4DoubleQuantForwardCpuRatio => Nf4DoubleQuantForward.CpuSeconds / Float32Forward.CpuSeconds;
    }

    /// <summary>Medians of one model's forwards.</summary>
    /// <param name="Seconds">Wall time.</param>
    /// <param name="CpuSeconds">Process CPU time (all threads).</param>
    public sealed record Timing(double Seconds, double CpuSeconds);

    /// <summary>Runs the benchmark on the Llama presets of <paramref name="sizes"/> ("small", "medium").</summary>
    public static IReadOnlyList<ModelResult> Run(IEnumerable<string> sizes, int threads = 2, int rounds = 5)
    {
        List<string> chosen = [.. sizes];
        foreach (string size in chosen) ModelPresets.Config("llama", size); // an unknown size fails before anything runs
        torch.set_num_threads(threads);
        var results = new List<ModelResult>();
        foreach (string size in chosen) results.Add(RunOne(size, rounds));
        return results;
    }

    private static ModelResult RunOne(string size, int rounds)
    {
        var nf4 = new BitsAndBytesConfig { LoadIn4Bit = true, QuantType = FourBitType.Nf4 };
        var nf4dq = new BitsAndBytesConfig { LoadIn4Bit = true, QuantType = FourBitType.Nf4, UseDoubleQuant = true };
        (_, nn.Module full) = ModelPresets.Create("llama", size, seed: 0);
        (_, nn.Module plain) = ModelPresets.Create("llama", size, seed: 0);
        (_, nn.Module nested) = ModelPresets.Create("llama", size, seed: 0);
        try
        {
            foreach (nn.Module m in new[] { full, plain, nested })
                foreach (var p in m.parameters()) p.requires_grad = false;
            ModelQuantizer.Quantize(plain, nf4);
            ModelQuantizer.Quantize(nested, nf4dq);
            var config = ((ICausalLM)full).Config;
            using var gen = new torch.Generator(1234);
            using Tensor batch = torch.randint(0, config.VocabSize, [4, 128], dtype: ScalarType.Int64, generator: gen);

            (double maxNf4, double meanNf4, double maxDq, double meanDq, double std) = LogitErrors(full, plain, nested, batch);
            Timing[] times = Forwards([full, plain, nested], batch, rounds);

            long embeddingAndHead = full.named_modules().Where(m => m.name is "model.embed_tokens" or "lm_head")
                .SelectMany(m => m.module.parameters(recurse: false)).Sum(Bytes);
            List<QuantizedLinear> plainLayers = [.. plain.modules().OfType<QuantizedLinear>()];
            List<QuantizedLinear> nestedLayers = [.. nested.modules().OfType<QuantizedLinear>()];
            long weights = plainLayers.Sum(l => l.InFeatures * l.OutFeatures);
            return new ModelResult($"llama {size}", full.parameters().Sum(p => p.NumberOfElements), weights,
                plainLayers.Sum(l => l.QuantizedBytes) * 8.0 / weights, nestedLayers.Sum(l => l.QuantizedBytes) * 8.0 / weights,
                TensorBytes(full), TensorBytes(plain), TensorBytes(nested), embeddingAndHead,
                maxNf4, meanNf4, maxDq, meanDq, std, times[0], times[1], times[2]);
        }
        finally
        {
            nested.Dispose();
            plain.Dispose();
            full.Dispose();
        }
    }

    // Every parameter and buffer a model holds (a tied weight once: it is one parameter object).
    private static long TensorBytes(nn.Module model) =>
        model.parameters().Sum(Bytes) + model.named_buffers().Sum(b => b.buffer.NumberOfElements * b.buffer.ElementSize);

    private static long Bytes(Tensor t) => t.NumberOfElements * t.ElementSize;

    private static (double MaxNf4, double MeanNf4, double MaxDq, double MeanDq, double Std) LogitErrors(nn.Module full, nn.Module plain, nn.Module nested, Tensor batch)
    {
        using var scope = NewDisposeScope();
        using var _ = torch.inference_mode();
        Tensor reference = ((ICausalLM)full).Forward(batch);
        Tensor a = (((ICausalLM)plain).Forward(batch) - reference).abs();
        Tensor b = (((ICausalLM)nested).Forward(batch) - reference).abs();
        return (a.max().item<float>(), a.mean().item<float>(), b.max().item<float>(), b.mean().item<float>(), reference.std().item<float>());
    }

    // One warm-up round, then rounds in which every model runs once, the order rotating; medians per model.
    private static Timing[] Forwards(nn.Module[] models, Tensor batch, int rounds)
    {
        var wall = models.Select(_ => new List<double>()).ToArray();
        var cpu = models.Select(_ => new List<double>()).ToArray();
        using var process = Process.GetCurrentProcess();
        for (int round = -1; round < rounds; round++)
        {
            for (int j = 0; j < models.Length; j++)
            {
                int k = (j + Math.Max(round, 0)) % models.Length;
                process.Refresh();
                TimeSpan cpuStart = process.TotalProcessorTime;
                long start = Stopwatch.GetTimestamp();
                using (torch.inference_mode())
                using (NewDisposeScope()) ((ICausalLM)models[k]).Forward(batch);
                double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
                process.Refresh();
                if (round < 0) continue;
                wall[k].Add(seconds);
                cpu[k].Add((process.TotalProcessorTime - cpuStart).TotalSeconds);
            }
        }
        return [.. models.Select((_, k) => new Timing(Median(wall[k]), Median(cpu[k])))];
    }

    private static double Median(List<double> values) => values.Order().ElementAt(values.Count / 2);
}
