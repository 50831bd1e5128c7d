namespace PeftHost.Tokenizers.Jinja.Syntax;

/// <summary>A place in the template text: 1-based line and column (after newlines are normalised to \n).</summary>
internal readonly record struct SourcePosition(int Line, int Column)
{
    public override string ToString() => $"line {Line}, column {Column}";
}
