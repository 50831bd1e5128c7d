namespace PeftHost.Tokenizers.Jinja.Syntax;

/// <summary>The template text is not valid Jinja: the message names the line, the column and what was expected.</summary>
internal sealed class JinjaSyntaxException(string detail, SourcePosition position)
    : Exception($"{position}: {detail}")
{
    /// <summary>What is wrong, without the position.</summary>
    public string Detail { get; } = detail;

    public SourcePosition Position { get; } = position;
}
