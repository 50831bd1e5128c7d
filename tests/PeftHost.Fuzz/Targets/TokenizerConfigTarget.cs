using PeftHost.Tokenizers;

namespace PeftHost.Fuzz.Targets;

/// <summary>
/// One of the configuration files read beside a valid byte-level tokenizer.json (<see cref="TokenizerConfig.Read"/>):
/// tokenizer_config.json (special tokens as strings or AddedToken objects, add_bos/eos flags, lower-casing, the
/// chat template field), special_tokens_map.json or generation_config.json (eos_token_id); then the tokenizer is used.
/// </summary>
public sealed class TokenizerConfigTarget(string name = "tokenizer-config", string file = "tokenizer_config.json") : FuzzTarget
{
    /// <inheritdoc />
    public override string Name => name;

    /// <inheritdoc />
    public override string Description => $"{file} beside a fixed tokenizer.json: special tokens, flags, chat_template, eos ids";

    /// <inheritdoc />
    protected override void Run(byte[] input)
    {
        FuzzScratch.Fresh("tokenizer.json", SeedFiles.ByteLevelTokenizerJson);
        FuzzScratch.Add(file, input);
        TokenizerUse.Exercise(Name, TokenizerLoader.FromDirectory(FuzzScratch.Folder));
    }

    // A chat template that is no known format is refused by ChatTemplate with its own documented type.
    /// <inheritdoc />
    protected override bool IsCleanError(Exception e) => e is TokenizerLoadException or ChatTemplateException or System.Text.RegularExpressions.RegexMatchTimeoutException;

    /// <inheritdoc />
    protected override bool NamesItsSubject(string message) =>
        base.NamesItsSubject(message) || message.Contains("template", StringComparison.OrdinalIgnoreCase) || message.Contains("pattern", StringComparison.Ordinal);
}
