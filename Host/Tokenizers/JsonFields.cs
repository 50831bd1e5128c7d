using System.Text.Json;

namespace PeftHost.Tokenizers;

/// <summary>Reads typed JSON fields and reports the file and field path on any mismatch.</summary>
internal readonly struct JsonFields(string filePath, JsonElement element, string path)
{
    public string FilePath { get; } = filePath;

    public JsonElement Element { get; } = element;

    public string Path { get; } = path;

    public static JsonDocument Parse(string filePath)
    {
        if (!File.Exists(filePath))
        {
            throw new TokenizerLoadException(filePath, null, "file not found.");
        }

        try
        {
            byte[] bytes = File.ReadAllBytes(filePath);
            // JsonDocument checks UTF-8 only when a string is read: refuse a file that is not UTF-8 here.
            if (!System.Text.Unicode.Utf8.IsValid(bytes))
            {
                throw new TokenizerLoadException(filePath, null, "not valid UTF-8 JSON.");
            }

            return JsonDocument.Parse(bytes, new JsonDocumentOptions { AllowTrailingCommas = true });
        }
        catch (JsonException e)
        {
            throw new TokenizerLoadException(filePath, null, $"not valid JSON ({e.Message}).", e);
        }
    }

    public string Child(string name) => Path.Length == 0 ? name : $"{Path}.{name}";

    public TokenizerLoadException Error(string? name, string message) =>
        new(FilePath, name is null ? (Path.Length == 0 ? null : Path) : Child(name), message);

    /// <summary>The named child when present and not null.</summary>
    public bool TryGet(string name, out JsonFields value)
    {
        if (Element.ValueKind == JsonValueKind.Object && Element.TryGetProperty(name, out JsonElement e) && e.ValueKind != JsonValueKind.Null)
        {
            value = new JsonFields(FilePath, e, Child(name));
            return true;
        }

        value = default;
        return false;
    }

    public JsonFields Required(string name) =>
        TryGet(name, out JsonFields v) ? v : throw Error(name, "is missing.");

    public string RequiredString(string name)
    {
        JsonFields v = Required(name);
        return v.Element.ValueKind == JsonValueKind.String ? v.Element.GetString()! : throw Error(name, $"must be a string, found {v.Element.ValueKind}.");
    }

    public string? OptionalString(string name)
    {
        if (!TryGet(name, out JsonFields v))
        {
            return null;
        }

        return v.Element.ValueKind == JsonValueKind.String ? v.Element.GetString() : throw Error(name, $"must be a string, found {v.Element.ValueKind}.");
    }

    public bool OptionalBool(string name, bool fallback)
    {
        if (!TryGet(name, out JsonFields v))
        {
            return fallback;
        }

        return v.Element.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw Error(name, $"must be true or false, found {v.Element.ValueKind}."),
        };
    }

    public bool? OptionalBoolOrNull(string name) => TryGet(name, out _) ? OptionalBool(name, false) : null;

    public int RequiredInt(string name)
    {
        JsonFields v = Required(name);
        return v.Element.ValueKind == JsonValueKind.Number && v.Element.TryGetInt32(out int i) ? i : throw Error(name, "must be an integer.");
    }

    /// <summary>This element as a 32-bit integer (any other kind, or a fraction, is an error naming the field).</summary>
    public int AsInt(string what = "must be an integer.") =>
        Element.ValueKind == JsonValueKind.Number && Element.TryGetInt32(out int i) ? i : throw Error(null, what);

    public int OptionalInt(string name, int fallback) => TryGet(name, out _) ? RequiredInt(name) : fallback;

    public IEnumerable<JsonFields> Items()
    {
        if (Element.ValueKind != JsonValueKind.Array)
        {
            throw Error(null, $"must be an array, found {Element.ValueKind}.");
        }

        int i = 0;
        foreach (JsonElement e in Element.EnumerateArray())
        {
            yield return new JsonFields(FilePath, e, $"{Path}[{i}]");
            i++;
        }
    }

    public IEnumerable<(string Name, JsonFields Value)> Properties()
    {
        if (Element.ValueKind != JsonValueKind.Object)
        {
            throw Error(null, $"must be an object, found {Element.ValueKind}.");
        }

        foreach (JsonProperty p in Element.EnumerateObject())
        {
            yield return (p.Name, new JsonFields(FilePath, p.Value, Child(p.Name)));
        }
    }

    /// <summary>A token given either as a plain string or as an AddedToken object with <c>content</c>.</summary>
    public string? OptionalTokenString(string name)
    {
        if (!TryGet(name, out JsonFields v))
        {
            return null;
        }

        return v.Element.ValueKind switch
        {
            JsonValueKind.String => v.Element.GetString(),
            JsonValueKind.Object => v.RequiredString("content"),
            _ => throw Error(name, $"must be a string or an object with 'content', found {v.Element.ValueKind}."),
        };
    }
}
