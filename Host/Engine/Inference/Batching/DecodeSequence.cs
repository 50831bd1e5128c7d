using PeftHost.Models.Generation;

namespace PeftHost.Engine.Inference.Batching;

/// <summary>One sequence in an <see cref="IBatchDecoder"/>: its ids so far, its adapter, its decoding settings and its row's state.</summary>
public sealed class DecodeSequence
{
    private readonly List<long> _ids;

    internal DecodeSequence(IReadOnlyList<int> prompt, string? adapter, GenerationOptions options)
    {
        _ids = [.. prompt.Select(i => (long)i)];
        PromptLength = prompt.Count;
        Adapter = adapter;
        Options = options;
    }

    /// <summary>The adapter serving it (null: the base model).</summary>
    public string? Adapter { get; }

    /// <summary>Its decoding settings (sampling, repetition penalty, seed).</summary>
    public GenerationOptions Options { get; }

    /// <summary>Prompt tokens.</summary>
    public int PromptLength { get; }

    /// <summary>Tokens generated so far.</summary>
    public int Generated => _ids.Count - PromptLength;

    /// <summary>The token generated last.</summary>
    public int LastToken => (int)_ids[^1];

    /// <summary>Prompt and generated ids.</summary>
    public IReadOnlyList<long> Ids => _ids;

    /// <summary>Cache positions filled (prompt, virtual tokens and generated tokens but the last, which the next step writes).</summary>
    public long Position { get; internal set; }

    /// <summary>The adapter name its rows carry in a mixed batch (the base for prompt learning once its prompt ran).</summary>
    internal string Route { get; set; } = Abstractions.Layers.AdapterRouting.BaseModel;

    /// <summary>Its row in the decoder's batch.</summary>
    internal int Row { get; set; }

    /// <summary>Whatever the engine keeps per sequence (a sampler, a generator; disposed with the sequence when disposable).</summary>
    internal object? State { get; set; }

    internal void ReleaseState()
    {
        (State as IDisposable)?.Dispose();
        State = null;
    }

    internal void Add(long id) => _ids.Add(id);
}
