using System.Collections;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace PeftHost.Tokenizers.Jinja.Runtime;

/// <summary>
/// Turns .NET values given to a render (strings, numbers, booleans, dictionaries, lists, System.Text.Json
/// elements and nodes) into template values, as transformers hands Python objects to Jinja.
/// </summary>
internal static class ClrValues
{
    private const int MaxDepth = 64;

    public static object? ToTemplate(object? value) => Convert(value, 0);

    private static object? Convert(object? value, int depth)
    {
        if (depth > MaxDepth) throw new ArgumentException($"A template variable is nested deeper than {MaxDepth} levels.");
        switch (value)
        {
            case null: return null;
            case string or bool or long or double or PyList or PyDict or Undefined or Namespace or PyCallable: return value;
            case int or short or sbyte or byte or ushort or uint: return System.Convert.ToInt64(value, CultureInfo.InvariantCulture);
            case ulong u: return u <= long.MaxValue ? (long)u : (double)u;
            case float or decimal: return System.Convert.ToDouble(value, CultureInfo.InvariantCulture);
            case char c: return c.ToString();
            case JsonElement e: return FromJson(e, depth);
            case JsonNode n: return FromJson(JsonSerializer.SerializeToElement(n), depth);
            case ChatMessage m:
                var message = new PyDict();
                message.Set("role", m.Role);
                message.Set("content", m.Content);
                return message;
            case IDictionary dictionary:
                var dict = new PyDict();
                foreach (DictionaryEntry entry in dictionary) dict.Set(Convert(entry.Key, depth + 1), Convert(entry.Value, depth + 1));
                return dict;
            case IEnumerable<KeyValuePair<string, object?>> pairs:
                var fromPairs = new PyDict();
                foreach ((string k, object? v) in pairs) fromPairs.Set(k, Convert(v, depth + 1));
                return fromPairs;
            case IEnumerable items:
                var list = new List<object?>();
                foreach (object? item in items) list.Add(Convert(item, depth + 1));
                return new PyList(list);
            default:
                throw new ArgumentException($"A template variable of type {value.GetType().Name} cannot be given to a chat template (use strings, numbers, booleans, lists, dictionaries or JSON).");
        }
    }

    private static object? FromJson(JsonElement e, int depth)
    {
        if (depth > MaxDepth) throw new ArgumentException($"A template variable is nested deeper than {MaxDepth} levels.");
        switch (e.ValueKind)
        {
            case JsonValueKind.Null:
            case JsonValueKind.Undefined:
                return null;
            case JsonValueKind.True: return true;
            case JsonValueKind.False: return false;
            case JsonValueKind.String: return e.GetString();
            case JsonValueKind.Number:
                // Python's json.loads: an integer literal is an int, anything with a fraction or exponent a float.
                string raw = e.GetRawText();
                if (raw.AsSpan().IndexOfAny(".eE") < 0 && e.TryGetInt64(out long l)) return l;
                return e.GetDouble();
            case JsonValueKind.Array:
                var list = new List<object?>(e.GetArrayLength());
                foreach (JsonElement item in e.EnumerateArray()) list.Add(FromJson(item, depth + 1));
                return new PyList(list);
            default:
                var dict = new PyDict();
                foreach (JsonProperty p in e.EnumerateObject()) dict.Set(p.Name, FromJson(p.Value, depth + 1));
                return dict;
        }
    }
}
