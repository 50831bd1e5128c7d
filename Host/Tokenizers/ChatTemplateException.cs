namespace PeftHost.Tokenizers;

/// <summary>
/// A chat template could not be parsed, or cannot render the given messages: a Jinja syntax error, an error
/// while rendering, or the template's own <c>raise_exception</c> (whose message is the template's).
/// </summary>
public sealed class ChatTemplateException : Exception
{
    /// <summary>An error without a position in the template.</summary>
    /// <param name="message">What is wrong.</param>
    public ChatTemplateException(string message)
        : base(message)
    {
    }

    /// <summary>An error at a place of the template.</summary>
    /// <param name="message">What is wrong, naming the place.</param>
    /// <param name="line">The template line (1-based).</param>
    /// <param name="column">The template column (1-based).</param>
    /// <param name="inner">The interpreter's error.</param>
    public ChatTemplateException(string message, int line, int column, Exception inner)
        : base(message, inner)
    {
        Line = line;
        Column = column;
    }

    /// <summary>The template line of the error (1-based), or null.</summary>
    public int? Line { get; }

    /// <summary>The template column of the error (1-based), or null.</summary>
    public int? Column { get; }
}
