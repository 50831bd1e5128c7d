using PeftHost.Tokenizers;

namespace PeftHost.Fuzz.Targets;

/// <summary>tokenizer.json (BPE model, added tokens, normalizer, pre-tokenizer, post-processor, decoder) loaded from a model folder, then used.</summary>
public sealed class TokenizerJsonTarget : FuzzTarget
{
    /// <inheritdoc />
    public override string Name => "tokenizer-json";

    /// <inheritdoc />
    public override string Description => "tokenizer.json: model.vocab/merges, added_tokens, normalizer, pre_tokenizer (regexes), post_processor, decoder; encode/decode";

    /// <inheritdoc />
    protected override void Run(byte[] input)
    {
        FuzzScratch.Fresh("tokenizer.json", input);
        TokenizerUse.Exercise(Name, TokenizerLoader.FromDirectory(FuzzScratch.Folder));
    }

    /// <inheritdoc />
    protected override bool IsCleanError(Exception e) => e is TokenizerLoadException or System.Text.RegularExpressions.RegexMatchTimeoutException;

    // A regex timeout names the pattern at fault rather than the file.
    /// <inheritdoc />
    protected override bool NamesItsSubject(string message) => base.NamesItsSubject(message) || message.Contains("pattern", StringComparison.Ordinal);
}
