using System.Text.Json.Nodes;

namespace PeftHost.Models.Config;

/// <summary>Typed reads of config.json fields, with errors that name the file and the field.</summary>
internal sealed class ConfigJson(JsonObject json, string source)
{
    public JsonObject Json { get; } = json;

    public string Source { get; } = source;

    public bool Has(string key) => Json[key] is not null;

    public int Int(string key) => Int(key, null) ?? throw Missing(key);

    public int? Int(string key, int? fallback) => Json[key] is JsonValue v ? Convert(key, () => Number(v) is var d && d == Math.Floor(d) && Math.Abs(d) <= int.MaxValue ? (int)d : throw new FormatException(), v) : fallback;

    public double Double(string key) => Double(key, null) ?? throw Missing(key);

    public double? Double(string key, double? fallback) => Json[key] is JsonValue v ? Convert(key, () => Number(v), v) : fallback;

    public bool Bool(string key, bool fallback) => Json[key] is JsonValue v ? Convert(key, () => v.GetValue<bool>(), v) : fallback;

    public string? String(string key) => Json[key] is JsonValue v ? Convert(key, () => v.GetValue<string>(), v) : null;

    public InvalidDataException Invalid(string what) => new($"{Source}: {what}");

    // Values parsed from text and values built in code (int, double) both arrive here.
    // Finite only: 1e309 parses as infinity.
    private static double Number(JsonValue v) =>
        v.GetValueKind() == System.Text.Json.JsonValueKind.Number && double.Parse(v.ToJsonString(), System.Globalization.CultureInfo.InvariantCulture) is var d && double.IsFinite(d)
            ? d : throw new FormatException();

    private T Convert<T>(string key, Func<T> read, JsonValue v)
    {
        try { return read(); }
        catch (Exception e) when (e is InvalidOperationException or FormatException)
        {
            throw Invalid($"field '{key}' has value {v.ToJsonString()}, which is not a {typeof(T).Name}.");
        }
    }

    private InvalidDataException Missing(string key) => Invalid($"required field '{key}' is missing.");
}
