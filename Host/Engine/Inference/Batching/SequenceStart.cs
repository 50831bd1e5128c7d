using PeftHost.Models.Generation;

namespace PeftHost.Engine.Inference.Batching;

/// <summary>A sequence to start in an <see cref="IBatchDecoder"/>: its prompt, its adapter (null: the base model) and its decoding settings.</summary>
public sealed record SequenceStart(IReadOnlyList<int> Prompt, string? Adapter, GenerationOptions Options);

/// <summary>What <see cref="IBatchDecoder.StartMany"/> made of one <see cref="SequenceStart"/>: the running sequence, or why it could not start.</summary>
/// <param name="Sequence">The sequence, with its first token sampled; null when <paramref name="Error"/> is set.</param>
/// <param name="Error">The exception <see cref="IBatchDecoder.Start"/> documents for this request (or the forward's failure); null on success.</param>
public readonly record struct StartOutcome(DecodeSequence? Sequence, Exception? Error);
