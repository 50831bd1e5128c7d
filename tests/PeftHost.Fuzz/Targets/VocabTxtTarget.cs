using PeftHost.Tokenizers;

namespace PeftHost.Fuzz.Targets;

/// <summary>BERT's vocab.txt (one token a line) loaded from a model folder, then used.</summary>
public sealed class VocabTxtTarget : FuzzTarget
{
    /// <inheritdoc />
    public override string Name => "vocab-txt";

    /// <inheritdoc />
    public override string Description => "vocab.txt: WordPiece tokens one a line, special tokens present; encode/decode";

    /// <inheritdoc />
    protected override void Run(byte[] input)
    {
        FuzzScratch.Fresh("vocab.txt", input);
        TokenizerUse.Exercise(Name, TokenizerLoader.FromDirectory(FuzzScratch.Folder));
    }

    /// <inheritdoc />
    protected override bool IsCleanError(Exception e) => e is TokenizerLoadException or System.Text.RegularExpressions.RegexMatchTimeoutException;

    // A regex timeout names the pattern at fault rather than the file.
    /// <inheritdoc />
    protected override bool NamesItsSubject(string message) => base.NamesItsSubject(message) || message.Contains("pattern", StringComparison.Ordinal);
}
