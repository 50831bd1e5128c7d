namespace PeftHost.Training.Data;

/// <summary>
/// One tokenised example. Causal LM: <see cref="Labels"/> per token (-100 = not counted; the shift
/// happens in the loss). Classification: <see cref="ClassLabel"/> or <see cref="Target"/> (regression).
/// Packed rows carry <see cref="SequenceIds"/> (1, 2, ... per document) and restart positions per document.
/// </summary>
public sealed record TrainingExample
{
    /// <summary>Label value PyTorch's cross-entropy ignores.</summary>
    public const int IgnoreIndex = -100;

    /// <summary>Token ids.</summary>
    public required int[] InputIds { get; init; }

    /// <summary>Per-token labels (causal LM), the same length as <see cref="InputIds"/>.</summary>
    public int[]? Labels { get; init; }

    /// <summary>1 for tokens attended, 0 for padding given in a pre-tokenised row.</summary>
    public int[]? AttentionMask { get; init; }

    /// <summary>The class index (classification).</summary>
    public long? ClassLabel { get; init; }

    /// <summary>The target value (regression, num_labels 1).</summary>
    public float? Target { get; init; }

    /// <summary>Packed rows: which document each token belongs to (1-based).</summary>
    public int[]? SequenceIds { get; init; }

    /// <summary>Packed rows: each token's position within its document.</summary>
    public int[]? PositionIds { get; init; }

    /// <summary>Prompt + completion rows: the prompt's token count (generation-based metrics continue from there).</summary>
    public int? PromptLength { get; init; }

    /// <summary>Prompt + completion rows: the completion text (the reference of exact_match and BLEU).</summary>
    public string? Reference { get; init; }

    /// <summary>Where the example came from, for messages.</summary>
    public string Source { get; init; } = "";

    /// <summary>The number of label tokens that count in the loss (causal LM; after the shift).</summary>
    public int CountedTokens => Labels is null ? 0 : Labels.Skip(1).Count(l => l != IgnoreIndex);
}
