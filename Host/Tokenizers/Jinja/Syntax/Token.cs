namespace PeftHost.Tokenizers.Jinja.Syntax;

/// <summary>One token: its kind, its text (a name, an operator, a string's value), a number's value and where it starts.</summary>
internal readonly record struct Token(TokenKind Kind, string Value, object? Number, SourcePosition Position)
{
    public bool Is(TokenKind kind, string value) => Kind == kind && Value == value;

    public bool IsName(string name) => Kind == TokenKind.Name && Value == name;

    public bool IsOperator(string op) => Kind == TokenKind.Operator && Value == op;

    /// <summary>How an error message names this token (as Jinja's describe_token does).</summary>
    public string Describe() => Kind switch
    {
        TokenKind.Name or TokenKind.Operator => Value,
        TokenKind.String => "string",
        TokenKind.Integer => "integer",
        TokenKind.Float => "float",
        TokenKind.Data => "template data / text",
        TokenKind.VariableBegin => "begin of print statement",
        TokenKind.VariableEnd => "end of print statement",
        TokenKind.BlockBegin => "begin of statement block",
        TokenKind.BlockEnd => "end of statement block",
        _ => "end of template",
    };
}
