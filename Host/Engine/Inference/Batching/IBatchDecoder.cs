using PeftHost.Engine.Inference.Backends;
using PeftHost.Models.Generation;
using PeftHost.Tokenizers;

namespace PeftHost.Engine.Inference.Batching;

/// <summary>
/// A model that generates for several sequences at once, one token per sequence per <see cref="Step"/>
/// (continuous batching): a sequence joins between steps (<see cref="Start"/> runs its prompt and samples its
/// first token) and leaves between steps (<see cref="Finish"/>), while the others go on. The server's scheduler
/// drives it from one thread; adapters are loaded, replaced and unloaded between steps on that same thread.
/// </summary>
public interface IBatchDecoder : IDisposable
{
    /// <summary>Which engine runs the model.</summary>
    InferenceBackendKind Kind { get; }

    /// <summary>A short description for logs: engine, dtype, device, rows, adapters.</summary>
    string Description { get; }

    /// <summary>The model folder's tokenizer, or null when it has none.</summary>
    ITextTokenizer? Tokenizer { get; }

    /// <summary>Tokens in the vocabulary.</summary>
    int VocabSize { get; }

    /// <summary>Positions one sequence may hold: its prompt (with an adapter's virtual tokens) plus its new tokens.</summary>
    int ContextSize { get; }

    /// <summary>Sequences decoded together at most.</summary>
    int MaxRows { get; }

    /// <summary>Whether the sequences of one step may use different adapters (torch: yes; llama.cpp sets adapters per context: no).</summary>
    bool MixesAdapters { get; }

    /// <summary>The adapters loaded, in the order they were added.</summary>
    IReadOnlyList<string> Adapters { get; }

    /// <summary>The sequences being decoded, in row order.</summary>
    IReadOnlyList<DecodeSequence> Running { get; }

    /// <summary>Positions an adapter puts before every prompt (prompt learning's virtual tokens; 0 otherwise and for the base).</summary>
    /// <exception cref="KeyNotFoundException">The adapter is not loaded.</exception>
    int ExtraPositions(string? adapter);

    /// <summary>
    /// Starts a sequence in a free row: runs <paramref name="prompt"/> with <paramref name="adapter"/> (null: the
    /// base model) and samples its first token (<see cref="DecodeSequence.LastToken"/>).
    /// </summary>
    /// <exception cref="InvalidOperationException">Every row is in use, or the adapter cannot join the running ones (<see cref="MixesAdapters"/>).</exception>
    /// <exception cref="KeyNotFoundException">The adapter is not loaded.</exception>
    /// <exception cref="ArgumentException">A token id is outside the vocabulary, or the prompt does not fit the context.</exception>
    DecodeSequence Start(IReadOnlyList<int> prompt, string? adapter, GenerationOptions options);

    /// <summary>
    /// Starts several sequences in free rows, in order: an engine that can runs their prompts as one padded batch
    /// (a batched prefill); the default starts them one after the other. A request that <see cref="Start"/> would
    /// refuse gets its exception in its outcome and the others start; a failure of the shared forward fails them all.
    /// </summary>
    IReadOnlyList<StartOutcome> StartMany(IReadOnlyList<SequenceStart> starts)
    {
        ArgumentNullException.ThrowIfNull(starts);
        var outcomes = new StartOutcome[starts.Count];
        for (int i = 0; i < starts.Count; i++)
        {
            try
            {
                outcomes[i] = new StartOutcome(Start(starts[i].Prompt, starts[i].Adapter, starts[i].Options), null);
            }
            catch (Exception e)
            {
                // One request's failure is its own (the scheduler fails that request only).
                outcomes[i] = new StartOutcome(null, e);
            }
        }
        return outcomes;
    }

    /// <summary>One more token for every running sequence.</summary>
    void Step();

    /// <summary>Frees a sequence's row (at once: the next step no longer runs it).</summary>
    void Finish(DecodeSequence sequence);

    /// <summary>Loads an adapter folder (PEFT's save_pretrained layout) under a new name.</summary>
    /// <exception cref="ArgumentException">The name is taken or invalid.</exception>
    /// <exception cref="NotSupportedException">This engine cannot serve the adapter's method.</exception>
    void LoadAdapter(string name, string folder);

    /// <summary>Replaces the weights of a loaded adapter with those of another folder (a hotswap); no sequence may be using it.</summary>
    /// <exception cref="KeyNotFoundException">No adapter of that name.</exception>
    /// <exception cref="InvalidOperationException">A running sequence uses the adapter.</exception>
    void ReplaceAdapter(string name, string folder);

    /// <summary>Removes an adapter; no sequence may be using it.</summary>
    /// <exception cref="KeyNotFoundException">No adapter of that name.</exception>
    /// <exception cref="InvalidOperationException">A running sequence uses the adapter.</exception>
    void UnloadAdapter(string name);
}
