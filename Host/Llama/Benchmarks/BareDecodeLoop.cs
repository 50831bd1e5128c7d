using System.Diagnostics;
using LLama.Native;
using PeftHost.Llama.Runtime;

namespace PeftHost.Llama.Benchmarks;

/// <summary>
/// The reference the llama backend is measured against: LLamaSharp used directly, with nothing of
/// ours in between: load the GGUF, one context (same size, threads and KV cache types as ours),
/// a warm-up, then prefill the prompt in one batch and decode greedily (argmax over the logits) token by token, on
/// the decode thread count ours settled on (<see cref="LlamaCppContext.DecodeThreads"/>).
/// </summary>
public static class BareDecodeLoop
{
    /// <summary>Prefill and decode tokens/s of <paramref name="decodeTokens"/> greedy steps after <paramref name="prompt"/>.</summary>
    public static (double PrefillTokensPerSecond, double DecodeTokensPerSecond) Run(string ggufPath, IReadOnlyList<int> prompt, int decodeTokens, LlamaCppContextOptions options, int? decodeThreads = null)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        ArgumentNullException.ThrowIfNull(options);
        LlamaCppRuntime.EnsureLoaded();
        LLamaModelParams mp = LLamaModelParams.Default();
        mp.n_gpu_layers = 0;
        using SafeLlamaModelHandle model = SafeLlamaModelHandle.LoadFromFile(ggufPath, mp);
        LLamaContextParams cp = LLamaContextParams.Default();
        cp.n_ctx = (uint)options.ContextSize;
        cp.n_batch = cp.n_ubatch = (uint)Math.Min(options.BatchSize, options.ContextSize);
        cp.n_seq_max = 1;
        cp.n_threads = cp.n_threads_batch = options.Threads ?? Environment.ProcessorCount;
        if (decodeThreads is int d) cp.n_threads = d;
        if (options.ExactAttention ?? model.FileType == LLamaFtype.ALL_F32)
        {
            cp.type_k = cp.type_v = GGMLType.GGML_TYPE_F32;
            cp.llama_flash_attn_type = LLamaFlashAttentionType.LLAMA_FLASH_ATTENTION_TYPE_DISABLED;
        }
        using SafeLLamaContextHandle ctx = model.CreateContext(cp);
        var batch = new LLamaBatch();
        void FillPrompt()
        {
            batch.Clear();
            for (int i = 0; i < prompt.Count; i++) batch.Add(prompt[i], i, LLamaSeqId.Zero, i == prompt.Count - 1);
        }
        // A warm-up prompt and two decode steps, as the backend's measurement has: the freshly mapped weights' page
        // faults and the first graph allocations stay out of the timed run.
        FillPrompt();
        Check(ctx.Decode(batch));
        for (int i = 0; i < 2; i++)
        {
            batch.Clear();
            batch.Add(prompt[0], prompt.Count + i, LLamaSeqId.Zero, true);
            Check(ctx.Decode(batch));
        }
        ctx.MemoryClear(true);
        FillPrompt();
        long start = Stopwatch.GetTimestamp();
        Check(ctx.Decode(batch));
        int token = ArgMax(ctx.GetLogitsIth(prompt.Count - 1));
        double prefill = Stopwatch.GetElapsedTime(start).TotalSeconds;
        start = Stopwatch.GetTimestamp();
        for (int i = 0; i < decodeTokens; i++)
        {
            batch.Clear();
            batch.Add(token, prompt.Count + i, LLamaSeqId.Zero, true);
            Check(ctx.Decode(batch));
            token = ArgMax(ctx.GetLogitsIth(0));
        }
        double decode = Stopwatch.GetElapsedTime(start).TotalSeconds;
        return (prompt.Count / prefill, decodeTokens / decode);
    }

    private static void Check(DecodeResult r)
    {
        if (r != DecodeResult.Ok) throw new LlamaCppException($"llama.cpp's decode failed ({r}): {LlamaCppRuntime.RecentLog()}");
    }

    private static int ArgMax(ReadOnlySpan<float> values)
    {
        int best = 0;
        for (int i = 1; i < values.Length; i++)
            if (values[i] > values[best]) best = i;
        return best;
    }
}
