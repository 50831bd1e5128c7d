namespace PeftHost.Training.Data;

/// <summary>A dataset row that cannot be trained on: the message names the file, the line (row) and the field.</summary>
public sealed class DataFormatException : FormatException
{
    /// <summary>A problem with row <paramref name="line"/> of <paramref name="file"/>, in <paramref name="field"/> (null: the row as a whole).</summary>
    public DataFormatException(string file, long line, string? field, string problem)
        : base($"{file}: line {line}{(field is null ? "" : $", field '{field}'")}: {problem}")
    {
        File = file;
        Line = line;
        Field = field;
    }

    /// <summary>The dataset file.</summary>
    public string File { get; }

    /// <summary>The 1-based line (JSONL) or row (Parquet).</summary>
    public long Line { get; }

    /// <summary>The field at fault, or null.</summary>
    public string? Field { get; }
}
