namespace PeftHost.Engine.Inference;

/// <summary>The outcome of <see cref="TextGenerator"/>.</summary>
/// <param name="Text">The generated text (special tokens and the stop string left out).</param>
/// <param name="PromptIds">The ids the model was given.</param>
/// <param name="GeneratedIds">Every generated id, the final end-of-sequence id included.</param>
/// <param name="FinishReason">Why generation ended.</param>
/// <param name="Seconds">Wall time of the generation (prompt included, loading excluded).</param>
public sealed record TextGenerationResult(string Text, IReadOnlyList<long> PromptIds, IReadOnlyList<long> GeneratedIds, GenerationFinishReason FinishReason, double Seconds);
