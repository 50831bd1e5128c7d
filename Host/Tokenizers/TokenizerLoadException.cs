namespace PeftHost.Tokenizers;

/// <summary>A tokenizer file is missing, malformed or uses a feature this library does not support.</summary>
public sealed class TokenizerLoadException : Exception
{
    /// <summary>Creates the exception for a file and, where known, the JSON field at fault.</summary>
    /// <param name="filePath">The file that was being read.</param>
    /// <param name="field">The dotted field path (for example <c>model.merges</c>), or null.</param>
    /// <param name="message">What is wrong.</param>
    /// <param name="inner">The underlying error, if any.</param>
    public TokenizerLoadException(string filePath, string? field, string message, Exception? inner = null)
        : base(Format(filePath, field, message), inner)
    {
        FilePath = filePath;
        Field = field;
    }

    /// <summary>The file that was being read.</summary>
    public string FilePath { get; }

    /// <summary>The dotted JSON field at fault, or null when the whole file is at fault.</summary>
    public string? Field { get; }

    private static string Format(string filePath, string? field, string message) =>
        field is null ? $"{filePath}: {message}" : $"{filePath}: field '{field}': {message}";
}
