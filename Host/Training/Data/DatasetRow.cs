using System.Text.Json.Nodes;

namespace PeftHost.Training.Data;

/// <summary>One example as read from a dataset file: its fields, and where it came from (for errors).</summary>
/// <param name="File">The file.</param>
/// <param name="Line">The 1-based line (JSONL) or row (Parquet).</param>
/// <param name="Fields">The row's fields.</param>
public sealed record DatasetRow(string File, long Line, JsonObject Fields);
