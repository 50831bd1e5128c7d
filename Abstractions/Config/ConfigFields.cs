using System.Text.Json;
using System.Text.Json.Nodes;

namespace PeftHost.Abstractions.Config;

/// <summary>
/// Reads the fields of an <c>adapter_config.json</c> object by PEFT's names, with errors that name
/// the field, and remembers which fields were read so that the rest can be kept verbatim and
/// written back (round trips keep fields this version does not know).
/// </summary>
/// <remarks>Plain <see cref="JsonNode"/> access, no reflection-based serializer: a plugin in a
/// collectible load context leaves nothing cached in the host's serializer state.</remarks>
public sealed class ConfigFields
{
    private readonly JsonObject _json;
    private readonly HashSet<string> _read = new(StringComparer.Ordinal);

    /// <summary>Wraps a configuration object (it is not modified).</summary>
    public ConfigFields(JsonObject json) => _json = json;

    /// <summary>Whether the field is present and not null.</summary>
    public bool Has(string name) => _json.TryGetPropertyValue(name, out JsonNode? node) && node is not null;

    /// <summary>Reads a string field, or <paramref name="fallback"/> when absent or null.</summary>
    public string? GetString(string name, string? fallback = null)
    {
        JsonNode? node = Take(name);
        if (node is null) return fallback;
        return node is JsonValue v && v.TryGetValue(out string? s) ? s : throw Invalid(name, "a string", node);
    }

    /// <summary>Reads an integer field, or <paramref name="fallback"/> when absent or null.</summary>
    public int GetInt(string name, int fallback)
    {
        JsonNode? node = Take(name);
        if (node is null) return fallback;
        if (TryNumber(node, out double x) && IsInt(x)) return (int)x;
        throw Invalid(name, "an integer", node);
    }

    /// <summary>Reads a number field, or <paramref name="fallback"/> when absent or null.</summary>
    public double GetDouble(string name, double fallback)
    {
        JsonNode? node = Take(name);
        if (node is null) return fallback;
        return TryNumber(node, out double d) ? d : throw Invalid(name, "a number", node);
    }

    /// <summary>Reads a boolean field, or <paramref name="fallback"/> when absent or null.</summary>
    public bool GetBool(string name, bool fallback)
    {
        JsonNode? node = Take(name);
        if (node is null) return fallback;
        return node is JsonValue v && v.TryGetValue(out bool b) ? b : throw Invalid(name, "true or false", node);
    }

    /// <summary>Reads a list of strings, or null when absent or null.</summary>
    public IReadOnlyList<string>? GetStringList(string name)
    {
        JsonNode? node = Take(name);
        if (node is null) return null;
        if (node is not JsonArray array) throw Invalid(name, "a list of strings", node);
        var list = new List<string>(array.Count);
        foreach (JsonNode? item in array)
            list.Add(item is JsonValue v && v.TryGetValue(out string? s) ? s : throw Invalid(name, "a list of strings", node));
        return list;
    }

    /// <summary>Reads a list of integers, or a single integer as a one-element list; null when absent.</summary>
    public IReadOnlyList<int>? GetIntList(string name)
    {
        JsonNode? node = Take(name);
        if (node is null) return null;
        if (node is JsonValue single && TryNumber(single, out double one) && IsInt(one)) return [(int)one];
        if (node is not JsonArray array) throw Invalid(name, "an integer or a list of integers", node);
        var list = new List<int>(array.Count);
        foreach (JsonNode? item in array)
            list.Add(item is not null && TryNumber(item, out double i) && IsInt(i) ? (int)i : throw Invalid(name, "a list of integers", node));
        return list;
    }

    /// <summary>Reads <c>target_modules</c>-style fields: a list of names or one regular expression.</summary>
    public ModuleSelector? GetModuleSelector(string name)
    {
        JsonNode? node = Take(name);
        if (node is null) return null;
        if (node is JsonValue v && v.TryGetValue(out string? pattern)) return ModuleSelector.FromString(pattern, name);
        if (node is JsonArray)
        {
            _read.Remove(name);
            return ModuleSelector.FromNames(GetStringList(name)!);
        }
        throw Invalid(name, "a list of module names or a regular expression", node);
    }

    /// <summary>Reads an object of name → number (e.g. <c>rank_pattern</c>); empty when absent.</summary>
    public IReadOnlyDictionary<string, double> GetNumberMap(string name)
    {
        JsonNode? node = Take(name);
        var map = new Dictionary<string, double>(StringComparer.Ordinal);
        if (node is null) return map;
        if (node is not JsonObject obj) throw Invalid(name, "an object of name to number", node);
        foreach ((string key, JsonNode? value) in obj)
            map[key] = value is not null && TryNumber(value, out double d) ? d : throw Invalid($"{name}.{key}", "a number", value);
        return map;
    }

    /// <summary>Takes a field as raw JSON (a copy), or null when absent or null.</summary>
    public JsonNode? GetRaw(string name) => Take(name)?.DeepClone();

    /// <summary>The fields not read so far, copied: kept by the config and written back unchanged.</summary>
    public JsonObject Remaining()
    {
        var rest = new JsonObject();
        foreach ((string key, JsonNode? value) in _json)
            if (!_read.Contains(key)) rest[key] = value?.DeepClone();
        return rest;
    }

    // A number whether the node was parsed from text (a JsonElement) or built in code (an int, a double...).
    // Finite only: 1e309 parses as infinity, which JSON cannot hold, so the config could not be saved again.
    private static bool TryNumber(JsonNode node, out double value)
    {
        value = 0;
        return node is JsonValue v && v.GetValueKind() == JsonValueKind.Number &&
            double.TryParse(v.ToJsonString(), System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out value) &&
            double.IsFinite(value);
    }

    private static bool IsInt(double x) => x == Math.Floor(x) && Math.Abs(x) <= int.MaxValue;

    private JsonNode? Take(string name)
    {
        _read.Add(name);
        return _json.TryGetPropertyValue(name, out JsonNode? node) ? node : null;
    }

    private static TunerConfigException Invalid(string name, string expected, JsonNode? actual) =>
        new($"adapter config field '{name}': expected {expected}, got {actual?.ToJsonString() ?? "null"}.");
}
