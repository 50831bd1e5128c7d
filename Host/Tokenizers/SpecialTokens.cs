namespace PeftHost.Tokenizers;

/// <summary>Well-known special token strings of the tokenizers this project reads.</summary>
public static class SpecialTokens
{
    /// <summary>GPT-2 and byte-level BPE models' end of text.</summary>
    public const string EndOfText = "<|endoftext|>";
}
