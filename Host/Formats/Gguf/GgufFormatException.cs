namespace PeftHost.Formats.Gguf;

/// <summary>A GGUF file that cannot be read: the message names the file and, where one is involved, the tensor.</summary>
public sealed class GgufFormatException : Exception
{
    /// <summary>Creates the exception.</summary>
    public GgufFormatException(string fileName, string? tensorName, string problem)
        : base(tensorName is null
            ? $"GGUF file '{fileName}': {problem}"
            : $"GGUF file '{fileName}', tensor '{tensorName}': {problem}")
    {
        FileName = fileName;
        TensorName = tensorName;
    }

    /// <summary>The file (or the name given for a stream).</summary>
    public string FileName { get; }

    /// <summary>The tensor involved, if any.</summary>
    public string? TensorName { get; }
}
