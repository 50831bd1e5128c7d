namespace PeftHost.Engine.Inference;

/// <summary>Why text generation ended.</summary>
public enum GenerationFinishReason
{
    /// <summary>The model produced an end-of-sequence token.</summary>
    EndOfSequence,

    /// <summary>The text reached one of the stop strings.</summary>
    StopString,

    /// <summary>The maximum number of new tokens was generated.</summary>
    MaxNewTokens,
}
