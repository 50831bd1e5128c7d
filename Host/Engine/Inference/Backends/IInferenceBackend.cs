using PeftHost.Models.Generation;
using PeftHost.Tokenizers;

namespace PeftHost.Engine.Inference.Backends;

/// <summary>
/// One model ready to run, whichever engine runs it (<see cref="InferenceBackendKind"/>): the seam that
/// generation, the logits command and the server use. Token ids in, logits or streamed token ids out;
/// every backend tokenizes with the model folder's own tokenizer (<see cref="Tokenizer"/>) and is fed
/// ids, so text and chat templates are the same everywhere. Adapters loaded unmerged are chosen per
/// request, each with a scale; those a backend could only merge are listed in <see cref="MergedAdapters"/>
/// and always apply. One request at a time.
/// </summary>
public interface IInferenceBackend : IDisposable
{
    /// <summary>Which engine runs the model.</summary>
    InferenceBackendKind Kind { get; }

    /// <summary>A short description for logs: engine, weight type, device, adapters.</summary>
    string Description { get; }

    /// <summary>The model folder's tokenizer, or null when the folder has none (logits still run on ids).</summary>
    ITextTokenizer? Tokenizer { get; }

    /// <summary>Tokens in the vocabulary (the length of a logits row).</summary>
    int VocabSize { get; }

    /// <summary>The largest prompt plus new tokens one request may hold.</summary>
    int ContextSize { get; }

    /// <summary>Adapters applied unmerged, selectable per request, with the scales they run at by default.</summary>
    IReadOnlyList<AdapterScale> Adapters { get; }

    /// <summary>Adapters merged into the weights (always applied), each with why it could not stay unmerged.</summary>
    IReadOnlyList<MergedAdapter> MergedAdapters { get; }

    /// <summary>
    /// The logits of every position of <paramref name="ids"/> (one sequence, from position 0):
    /// float32 [ids.Count, vocab], row-major. <paramref name="adapters"/>: the unmerged adapters to apply
    /// and their scales (null: <see cref="Adapters"/>; empty: none).
    /// </summary>
    /// <exception cref="KeyNotFoundException">A selected adapter is not loaded.</exception>
    /// <exception cref="NotSupportedException">This backend cannot apply the selection (e.g. a scale it cannot set).</exception>
    float[] Logits(IReadOnlyList<int> ids, IReadOnlyList<AdapterScale>? adapters = null);

    /// <summary>
    /// Streams up to <see cref="GenerationOptions.MaxNewTokens"/> ids after <paramref name="promptIds"/>,
    /// stopping after one of <see cref="GenerationOptions.StopTokenIds"/>. Decoding settings a backend
    /// cannot honour are refused (<see cref="NotSupportedException"/>), never ignored.
    /// </summary>
    IEnumerable<int> Generate(IReadOnlyList<int> promptIds, GenerationOptions options, IReadOnlyList<AdapterScale>? adapters = null);
}
