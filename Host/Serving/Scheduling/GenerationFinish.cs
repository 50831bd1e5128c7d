namespace PeftHost.Serving.Scheduling;

/// <summary>Why the scheduler stopped generating for a request.</summary>
public enum GenerationFinish
{
    /// <summary>Still generating.</summary>
    None,

    /// <summary>An end-of-sequence id was generated (it is the last token streamed).</summary>
    EndOfSequence,

    /// <summary>The request's maximum of new tokens, or the model's context, was reached.</summary>
    Length,

    /// <summary>The request was cancelled (the client went away, a stop string was reached, the timeout ran out).</summary>
    Cancelled,
}
