namespace PeftHost.Serving.Completions;

/// <summary>How a completion ended: its finish reason as OpenAI names it, and the token counts of its usage.</summary>
public sealed class CompletionOutcome
{
    /// <summary>"stop" (end of sequence or a stop string), "length" (max_tokens or the context), or null while it runs.</summary>
    public string? FinishReason { get; internal set; }

    /// <summary>Prompt tokens.</summary>
    public int PromptTokens { get; internal set; }

    /// <summary>Tokens generated (up to the one that ended it).</summary>
    public int CompletionTokens { get; internal set; }

    /// <summary>The whole text.</summary>
    public string Text { get; internal set; } = "";

    /// <summary>Prompt plus completion tokens.</summary>
    public int TotalTokens => PromptTokens + CompletionTokens;
}
