using PeftHost.Engine.Inference.Backends;
using PeftHost.Llama;
using PeftHost.Models;
using PeftHost.Tests.Support;
using Xunit;

namespace PeftHost.Tests.Llama;

/// <summary>
/// Without a thread count, a llama.cpp context times its first one-token decode calls on each candidate count and keeps
/// the fastest; the switching changes no number: every step's logits equal those of contexts pinned to one thread and
/// to every CPU, exactly.
/// </summary>
public sealed class DecodeThreadTests : IDisposable
{
    private readonly ScratchFolder _scratch = new();

    public void Dispose() => _scratch.Dispose();

    private static List<float[]> Steps(LlamaCppContext context, int[] prompt, int[] next)
    {
        var steps = new List<float[]> { context.Prefill(prompt).ToArray() };
        for (int i = 0; i < next.Length; i++) steps.Add(context.Decode(next[i], prompt.Length + i).ToArray());
        return steps;
    }

    [Fact]
    public void Decode_threads_are_measured_once_and_never_change_the_logits()
    {
        string model = Path.Combine(_scratch.Path, "tiny");
        ModelPresets.Write("llama", "tiny", model, seed: 5);
        string cache = Path.Combine(_scratch.Path, "cache");
        int[] prompt = [5, 77, 200, 31];
        int[] next = [.. Enumerable.Range(0, 24).Select(i => (i * 37 + 11) % 250)];
        using var measured = (LlamaBackend)InferenceBackends.Open(LlamaFixtures.Options(InferenceBackendKind.Llama, model, cache));
        using var one = (LlamaBackend)InferenceBackends.Open(LlamaFixtures.Options(InferenceBackendKind.Llama, model, cache) with { Threads = 1 });
        using var all = (LlamaBackend)InferenceBackends.Open(LlamaFixtures.Options(InferenceBackendKind.Llama, model, cache) with { Threads = Environment.ProcessorCount });

        Assert.Equal(Environment.ProcessorCount == 1, measured.Context.DecodeThreadsCalibrated);
        Assert.True(one.Context.DecodeThreadsCalibrated);
        Assert.Equal(1, one.Context.DecodeThreads);
        List<float[]> calibrating = Steps(measured.Context, prompt, next);
        Assert.True(measured.Context.DecodeThreadsCalibrated);
        Assert.InRange(measured.Context.DecodeThreads, 1, Environment.ProcessorCount);

        List<float[]> pinnedOne = Steps(one.Context, prompt, next), pinnedAll = Steps(all.Context, prompt, next);
        for (int s = 0; s < calibrating.Count; s++)
        {
            Assert.Equal(pinnedOne[s], calibrating[s]);
            Assert.Equal(pinnedAll[s], calibrating[s]);
        }
        // After the choice, decoding goes on with the same numbers.
        Assert.Equal(pinnedOne, Steps(measured.Context, prompt, next));
    }
}
