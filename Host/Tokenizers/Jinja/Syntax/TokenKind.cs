namespace PeftHost.Tokenizers.Jinja.Syntax;

/// <summary>The kinds of token the lexer produces (comments and whitespace inside tags produce none).</summary>
internal enum TokenKind
{
    /// <summary>Template text between tags (also the body of a raw block).</summary>
    Data,

    /// <summary><c>{{</c>.</summary>
    VariableBegin,

    /// <summary><c>}}</c>.</summary>
    VariableEnd,

    /// <summary><c>{%</c>.</summary>
    BlockBegin,

    /// <summary><c>%}</c>.</summary>
    BlockEnd,

    /// <summary>An identifier; keywords (for, if, in, not, ...) are names the parser recognises.</summary>
    Name,

    /// <summary>A string literal, already unescaped.</summary>
    String,

    /// <summary>An integer literal.</summary>
    Integer,

    /// <summary>A float literal.</summary>
    Float,

    /// <summary>An operator or bracket: its text is the token's value.</summary>
    Operator,

    /// <summary>The end of the template.</summary>
    Eof,
}
