using System.Diagnostics;
using PeftHost.Formats.Gguf;

namespace PeftHost.Vulkan.Llama;

/// <summary>Prefill and decode speed of a <see cref="LlamaDeviceModel"/>.</summary>
/// <param name="Type">The model's weight type.</param>
/// <param name="PrefillTokens">Prompt length.</param>
/// <param name="PrefillTokensPerSecond">Prompt tokens per second (including the first sampled token).</param>
/// <param name="DecodeTokens">Decoded tokens timed.</param>
/// <param name="DecodeTokensPerSecond">Decoded tokens per second (one command buffer and one 4-byte read-back each).</param>
/// <param name="DispatchesPerToken">Dispatches recorded per decode step.</param>
public sealed record LlamaDeviceBenchmarkResult(GgmlType Type, int PrefillTokens, double PrefillTokensPerSecond, int DecodeTokens, double DecodeTokensPerSecond, int DispatchesPerToken);

/// <summary>Times prefill of a prompt and greedy decode after it (after one untimed warm-up of each).</summary>
public static class LlamaDeviceBenchmark
{
    /// <summary>Runs the benchmark with a fixed pseudo-random prompt.</summary>
    public static LlamaDeviceBenchmarkResult Run(LlamaDeviceModel model, int prefillTokens = 64, int decodeTokens = 16)
    {
        ArgumentNullException.ThrowIfNull(model);
        var rng = new Random(7);
        int[] prompt = [.. Enumerable.Range(0, prefillTokens).Select(_ => rng.Next(model.Parameters.VocabSize))];
        model.Prefill(prompt, 1, 1f, 0f);   // warm-up: pipelines, first touch
        model.DecodeStep(prefillTokens, 1, 1f, 0f);

        long start = Stopwatch.GetTimestamp();
        model.Prefill(prompt, 1, 1f, 0f);
        double prefill = Stopwatch.GetElapsedTime(start).TotalSeconds;
        start = Stopwatch.GetTimestamp();
        for (int i = 0; i < decodeTokens; i++)
        {
            model.DecodeStep(prefillTokens + i, 1, 1f, 0f);
        }
        double decode = Stopwatch.GetElapsedTime(start).TotalSeconds;
        return new LlamaDeviceBenchmarkResult(model.WeightType, prefillTokens, prefillTokens / prefill, decodeTokens, decodeTokens / decode, model.Graph.LastDispatchCount);
    }
}
