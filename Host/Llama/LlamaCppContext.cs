using LLama.Native;
using PeftHost.Llama.Runtime;

namespace PeftHost.Llama;

/// <summary>
/// One sequence's state in llama.cpp over a <see cref="LlamaCppModel"/>: its KV cache and the LoRA
/// adapters applied to it (unmerged, each with a scale; switching them reloads nothing). Every
/// request starts from an empty cache: <see cref="ComputeLogits"/> and <see cref="Prefill"/> clear it.
/// Not thread-safe: one request at a time.
/// </summary>
public sealed class LlamaCppContext : IDisposable
{
    private readonly LlamaCppModel _model;
    private readonly SafeLLamaContextHandle _handle;
    private readonly LLamaBatch _batch = new();
    private (LlamaCppAdapter Adapter, float Scale)[] _applied = [];
    private readonly DecodeThreadCalibration? _calibration;

    /// <summary>Creates a context of <see cref="LlamaCppContextOptions.ContextSize"/> positions.</summary>
    /// <exception cref="LlamaCppException">llama.cpp could not allocate it.</exception>
    public LlamaCppContext(LlamaCppModel model, LlamaCppContextOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        options ??= new LlamaCppContextOptions();
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(options.ContextSize);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(options.BatchSize);
        _model = model;
        ContextSize = options.ContextSize;
        BatchSize = Math.Min(options.BatchSize, options.ContextSize);
        ExactAttention = options.ExactAttention ?? model.FileType == LLamaFtype.ALL_F32;
        LLamaContextParams p = LLamaContextParams.Default();
        p.n_ctx = (uint)ContextSize;
        p.n_batch = (uint)BatchSize;
        p.n_ubatch = (uint)BatchSize;
        p.n_seq_max = 1;
        int threads = options.Threads ?? Environment.ProcessorCount;
        p.n_threads = threads;
        p.n_threads_batch = threads;
        DecodeThreads = threads;
        if (options.Threads is null && threads > 1) _calibration = new DecodeThreadCalibration(threads);
        if (ExactAttention)
        {
            p.type_k = GGMLType.GGML_TYPE_F32;
            p.type_v = GGMLType.GGML_TYPE_F32;
            p.llama_flash_attn_type = LLamaFlashAttentionType.LLAMA_FLASH_ATTENTION_TYPE_DISABLED;
        }
        LlamaCppRuntime.ClearLog();
        try
        {
            _handle = model.Handle.CreateContext(p);
        }
        catch (LLama.Exceptions.RuntimeError e)
        {
            throw new LlamaCppException($"{model.Path}: llama.cpp could not create a context of {ContextSize} positions: {LlamaCppRuntime.RecentLog()}", e);
        }
    }

    /// <summary>KV cache positions.</summary>
    public int ContextSize { get; }

    /// <summary>Tokens per decode call.</summary>
    public int BatchSize { get; }

    /// <summary>
    /// Threads of a one-token decode call: <see cref="LlamaCppContextOptions.Threads"/>, or, when that is null, the count
    /// the first decode calls measured fastest (every logical CPU until then; see <see cref="DecodeThreadsCalibrated"/>).
    /// </summary>
    public int DecodeThreads { get; private set; }

    /// <summary>Whether <see cref="DecodeThreads"/> is settled (given, or measured).</summary>
    public bool DecodeThreadsCalibrated => _calibration is null || _calibration.Done;

    /// <summary>Whether the attention runs in float32 (see <see cref="LlamaCppContextOptions.ExactAttention"/>).</summary>
    public bool ExactAttention { get; }

    /// <summary>Tokens in the vocabulary (the length of every logits row).</summary>
    public int VocabSize => _model.VocabSize;

    /// <summary>The adapters applied now, with their scales.</summary>
    public IReadOnlyList<(LlamaCppAdapter Adapter, float Scale)> Adapters => _applied;

    /// <summary>
    /// Applies exactly these adapters (llama.cpp's llama_set_adapters_lora: each adds scale x alpha / r x B A
    /// to its weight's product, unmerged); an empty list runs the base model. Nothing happens when the set is unchanged.
    /// </summary>
    public void SetAdapters(IReadOnlyList<(LlamaCppAdapter Adapter, float Scale)> adapters)
    {
        ArgumentNullException.ThrowIfNull(adapters);
        if (adapters.SequenceEqual(_applied)) return;
        foreach ((LlamaCppAdapter a, float s) in adapters)
        {
            if (!float.IsFinite(s)) throw new ArgumentException($"adapter '{a.Name}': scale {s} is not a finite number.", nameof(adapters));
        }
        (LoraAdapter, float)[] native = [.. adapters.Select(a => (a.Adapter.Native, a.Scale))];
        _handle.SetLoraAdapters(native);
        _applied = [.. adapters];
    }

    /// <summary>The logits of every position of <paramref name="ids"/> from an empty cache: [ids.Length, vocab] row-major.</summary>
    public float[] ComputeLogits(ReadOnlySpan<int> ids)
    {
        CheckIds(ids);
        int vocab = VocabSize;
        var logits = new float[(long)ids.Length * vocab];
        _handle.MemoryClear(true);
        for (int start = 0; start < ids.Length; start += BatchSize)
        {
            int n = Math.Min(BatchSize, ids.Length - start);
            _batch.Clear();
            for (int i = 0; i < n; i++) _batch.Add(ids[start + i], start + i, LLamaSeqId.Zero, true);
            Run(_batch, start);
            for (int i = 0; i < n; i++) _handle.GetLogitsIth(i).CopyTo(logits.AsSpan((start + i) * vocab, vocab));
        }
        return logits;
    }

    /// <summary>Runs the prompt from an empty cache; returns the logits after its last token (valid until the next call).</summary>
    public ReadOnlySpan<float> Prefill(ReadOnlySpan<int> prompt)
    {
        if (prompt.IsEmpty) throw new ArgumentException("The prompt must hold at least one token.", nameof(prompt));
        CheckIds(prompt);
        _handle.MemoryClear(true);
        int n = 0;
        for (int start = 0; start < prompt.Length; start += BatchSize)
        {
            n = Math.Min(BatchSize, prompt.Length - start);
            _batch.Clear();
            for (int i = 0; i < n; i++) _batch.Add(prompt[start + i], start + i, LLamaSeqId.Zero, start + i == prompt.Length - 1);
            Run(_batch, start);
        }
        return _handle.GetLogitsIth(n - 1);
    }

    /// <summary>Runs one token at <paramref name="position"/> (the cache holds every earlier one); returns the logits after it.</summary>
    public ReadOnlySpan<float> Decode(int token, int position)
    {
        if (position <= 0 || position >= ContextSize)
            throw new ArgumentOutOfRangeException(nameof(position), position, $"Decode positions run from 1 to the context size {ContextSize} - 1.");
        CheckIds([token]);
        _batch.Clear();
        _batch.Add(token, position, LLamaSeqId.Zero, true);
        if (_calibration is { Done: false } c)
        {
            // Thread counts do not change llama.cpp's results (each output row is summed by one thread): only the time.
            _handle.GenerationThreads = c.Next();
            long start = System.Diagnostics.Stopwatch.GetTimestamp();
            Run(_batch, position);
            if (c.Record(System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalSeconds) is int best) DecodeThreads = best;
            _handle.GenerationThreads = DecodeThreads;
        }
        else Run(_batch, position);
        return _handle.GetLogitsIth(0);
    }

    private void Run(LLamaBatch batch, int position)
    {
        DecodeResult r = _handle.Decode(batch);
        if (r != DecodeResult.Ok)
            throw new LlamaCppException($"llama.cpp's decode at position {position} failed ({r}): {LlamaCppRuntime.RecentLog()}");
    }

    private void CheckIds(ReadOnlySpan<int> ids)
    {
        if (ids.Length > ContextSize)
            throw new ArgumentException($"{ids.Length} positions exceed the context size {ContextSize}.");
        int vocab = VocabSize;
        foreach (int id in ids)
        {
            if (id < 0 || id >= vocab) throw new ArgumentOutOfRangeException(nameof(ids), id, $"Token ids run from 0 to {vocab - 1}.");
        }
    }

    /// <inheritdoc/>
    public void Dispose() => _handle.Dispose();
}
