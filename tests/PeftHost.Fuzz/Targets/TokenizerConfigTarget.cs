using PeftHost.Tokenizers;

namespace PeftHost.Fuzz.Targets;

/// <summary>
/// tokenizer_config.json beside a valid byte-level tokenizer.json: special tokens (strings or AddedToken
/// objects), add_bos/eos flags, lower-casing, the chat template field; then the tokenizer is used.
/// </summary>
public sealed class TokenizerConfigTarget : FuzzTarget
{
    /// <inheritdoc />
    public override string Name => "tokenizer-config";

    /// <inheritdoc />
    public override string Description => "tokenizer_config.json beside a fixed tokenizer.json: bos/eos/pad/unk tokens, flags, chat_template";

    /// <inheritdoc />
    protected override void Run(byte[] input)
    {
        FuzzScratch.Fresh("tokenizer.json", SeedFiles.ByteLevelTokenizerJson);
        FuzzScratch.Add("tokenizer_config.json", input);
        TokenizerUse.Exercise(Name, TokenizerLoader.FromDirectory(FuzzScratch.Folder));
    }

    // A chat template that is no known format is refused by ChatTemplate with its own documented type.
    /// <inheritdoc />
    protected override bool IsCleanError(Exception e) => e is TokenizerLoadException or ChatTemplateException or System.Text.RegularExpressions.RegexMatchTimeoutException;

    /// <inheritdoc />
    protected override bool NamesItsSubject(string message) =>
        base.NamesItsSubject(message) || message.Contains("template", StringComparison.OrdinalIgnoreCase) || message.Contains("pattern", StringComparison.Ordinal);
}
