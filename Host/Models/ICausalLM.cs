using PeftHost.Models.Config;
using PeftHost.Models.Layers;
using static TorchSharp.torch;

namespace PeftHost.Models;

/// <summary>A decoder-only language model that can run a prompt, then token by token with a KV cache.</summary>
public interface ICausalLM
{
    /// <summary>The model's config.</summary>
    ModelConfig Config { get; }

    /// <summary>A preallocated cache for <paramref name="batch"/> sequences of up to <paramref name="capacity"/> positions, in the model's dtype and device.</summary>
    /// <exception cref="ModelInputException">The batch or the capacity is below 1.</exception>
    KvCache CreateCache(long batch, long capacity);

    /// <summary>
    /// Logits [batch, seq, vocab] (or [batch, 1, vocab] with <paramref name="lastTokenOnly"/>) for
    /// <paramref name="inputIds"/> [batch, seq] at positions start .. start + seq. With a cache, keys
    /// and values are written at <paramref name="startPosition"/> and earlier positions are read from
    /// it. <paramref name="attentionMask"/> [batch, start + seq] marks padding with 0.
    /// </summary>
    /// <exception cref="ModelInputException">An id is outside the vocabulary, a shape, dtype or device is wrong, the positions exceed the context, the mask holds other values than 0/1, or the cache does not fit (all checked before libtorch).</exception>
    Tensor Forward(Tensor inputIds, Tensor? attentionMask = null, KvCache? cache = null, long startPosition = 0, bool lastTokenOnly = false);

    /// <summary>
    /// The token embeddings [batch, seq, hidden] of <paramref name="inputIds"/> (transformers'
    /// <c>get_input_embeddings()(input_ids)</c>, through a tuner's wrapper where one wraps the embedding).
    /// </summary>
    /// <exception cref="ModelInputException">An id is outside the vocabulary, or the shape, dtype or device is wrong.</exception>
    Tensor EmbedInputs(Tensor inputIds);

    /// <summary>
    /// As <see cref="Forward"/> from input embeddings [batch, seq, hidden] instead of ids
    /// (transformers' <c>inputs_embeds</c>): prompt learning prepends virtual tokens this way.
    /// </summary>
    /// <exception cref="ModelInputException">The embeddings are not [batch, seq, hidden] of the model's dtype and device, or as for <see cref="Forward"/>.</exception>
    Tensor ForwardEmbeddings(Tensor inputsEmbeds, Tensor? attentionMask = null, KvCache? cache = null, long startPosition = 0, bool lastTokenOnly = false);

    /// <summary>
    /// Logits [batch, seq, vocab] (or [batch, 1, vocab] with <paramref name="lastTokenOnly"/>) for a batch
    /// whose rows are at different positions (continuous batching): row i's ids sit at
    /// <paramref name="rowStarts"/>[i] .. + seq, are written into row i of <paramref name="cache"/> there, and
    /// attend to that row's own cached positions 0 .. rowStarts[i] + seq only.
    /// With <paramref name="rowLengths"/>, row i holds rowLengths[i] tokens and is right-padded to seq (prompts of
    /// different lengths run as one batch): its cache row then counts rowStarts[i] + rowLengths[i] positions (the
    /// padding's keys sit beyond them, where its next token overwrites them, and no real token attends to them),
    /// and <paramref name="lastTokenOnly"/> takes each row's last real token.
    /// </summary>
    /// <exception cref="ModelInputException">An id is outside the vocabulary, a row's positions exceed the context or the cache, there is not one start (or length, from 1 to seq) per row, or the cache does not fit (all checked before libtorch).</exception>
    Tensor ForwardRows(Tensor inputIds, KvCache cache, IReadOnlyList<long> rowStarts, bool lastTokenOnly = false, IReadOnlyList<long>? rowLengths = null);

    /// <summary>As <see cref="ForwardRows"/> from input embeddings [batch, seq, hidden].</summary>
    /// <exception cref="ModelInputException">As for <see cref="ForwardRows"/> and <see cref="ForwardEmbeddings"/>.</exception>
    Tensor ForwardEmbeddingsRows(Tensor inputsEmbeds, KvCache cache, IReadOnlyList<long> rowStarts, bool lastTokenOnly = false, IReadOnlyList<long>? rowLengths = null);
}
