using System.Collections;
using System.Text.Json;
using System.Text.Json.Nodes;
using Parquet.Serialization;

namespace PeftHost.Training.Data;

/// <summary>
/// Reads a dataset file, one example per row: JSON Lines (<c>.jsonl</c>, <c>.json</c> with one object
/// per line) or Parquet (<c>.parquet</c>, the format of Hugging Face hub dataset files).
/// </summary>
public static class DatasetFile
{
    /// <summary>Every row of the file, in order.</summary>
    /// <exception cref="DataFormatException">A line is not a JSON object.</exception>
    public static IReadOnlyList<DatasetRow> Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Dataset {path} not found.", path);
        return Path.GetExtension(path).ToLowerInvariant() switch
        {
            ".parquet" => ReadParquet(path),
            ".jsonl" or ".json" => ReadJsonLines(path),
            string ext => throw new InvalidDataException($"{path}: a dataset is .jsonl or .parquet (got '{ext}')."),
        };
    }

    private static List<DatasetRow> ReadJsonLines(string path)
    {
        var rows = new List<DatasetRow>();
        long line = 0;
        foreach (string text in File.ReadLines(path))
        {
            line++;
            if (string.IsNullOrWhiteSpace(text)) continue;
            JsonNode? node;
            try { node = JsonNode.Parse(text); }
            catch (JsonException e) { throw new DataFormatException(path, line, null, $"invalid JSON ({e.Message})."); }
            if (node is not JsonObject o) throw new DataFormatException(path, line, null, $"expected a JSON object per line, got {node?.GetValueKind().ToString() ?? "null"}.");
            rows.Add(new DatasetRow(path, line, o));
        }
        return rows;
    }

    private static List<DatasetRow> ReadParquet(string path)
    {
        using FileStream stream = File.OpenRead(path);
        var result = ParquetSerializer.DeserializeUntypedAsync(stream).GetAwaiter().GetResult();
        var rows = new List<DatasetRow>();
        long row = 0;
        foreach (IDictionary<string, object> values in result.Data)
        {
            row++;
            var o = new JsonObject();
            foreach ((string key, object value) in values) o[key] = ToJson(value);
            rows.Add(new DatasetRow(path, row, o));
        }
        return rows;
    }

    // Parquet's nested values (lists, structs) as JSON, so that both formats go through one row reader.
    private static JsonNode? ToJson(object? value) => value switch
    {
        null => null,
        string s => JsonValue.Create(s),
        bool b => JsonValue.Create(b),
        IDictionary<string, object?> d => new JsonObject(d.Select(p => KeyValuePair.Create(p.Key, ToJson(p.Value)))),
        IDictionary d => new JsonObject(d.Keys.Cast<object>().Select(k => KeyValuePair.Create(k.ToString() ?? "", ToJson(d[k])))),
        IEnumerable e => new JsonArray([.. e.Cast<object?>().Select(ToJson)]),
        sbyte or byte or short or ushort or int or uint or long => JsonValue.Create(Convert.ToInt64(value, System.Globalization.CultureInfo.InvariantCulture)),
        ulong u => JsonValue.Create(u),
        float f => JsonValue.Create((double)f),
        double d => JsonValue.Create(d),
        decimal m => JsonValue.Create(m),
        _ => JsonValue.Create(value.ToString()),
    };
}
