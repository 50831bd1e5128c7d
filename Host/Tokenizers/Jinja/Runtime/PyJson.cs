using System.Globalization;
using System.Text;

namespace PeftHost.Tokenizers.Jinja.Runtime;

/// <summary>The options of Python's json.dumps that the tojson filters pass.</summary>
internal sealed record PyJsonOptions
{
    /// <summary>Escape every non-ASCII character as \uXXXX (json.dumps' default; transformers passes False).</summary>
    public bool EnsureAscii { get; init; } = true;

    /// <summary>null: one line; otherwise the indentation of each level (json.dumps' indent: a number of spaces or a string).</summary>
    public string? Indent { get; init; }

    /// <summary>Between items; null: ", " on one line, "," when indenting.</summary>
    public string? ItemSeparator { get; init; }

    /// <summary>Between a key and its value; null: ": ".</summary>
    public string? KeySeparator { get; init; }

    public bool SortKeys { get; init; }
}

/// <summary>
/// Python's json.dumps: the same separators, escapes (\uXXXX in lower-case hex, surrogate pairs for astral
/// characters under ensure_ascii), float repr (NaN, Infinity), key conversion and TypeErrors.
/// </summary>
internal static class PyJson
{
    private const int MaxDepth = 200;

    public static string Dumps(object? value, PyJsonOptions options)
    {
        var sb = new StringBuilder();
        Write(sb, value, options, 0);
        return sb.ToString();
    }

    private static void Write(StringBuilder sb, object? value, PyJsonOptions o, int depth)
    {
        if (depth > MaxDepth) throw new TemplateError(TemplateErrorKind.Recursion, "maximum recursion depth exceeded while encoding a JSON object");
        switch (value)
        {
            case null: sb.Append("null"); break;
            case bool b: sb.Append(b ? "true" : "false"); break;
            case long l: sb.Append(l.ToString(CultureInfo.InvariantCulture)); break;
            case double d: sb.Append(Float(d)); break;
            case string s: WriteString(sb, s, o.EnsureAscii); break;
            case PyMarkup m: WriteString(sb, m.Value, o.EnsureAscii); break;
            case PyList list:
                if (list.Count == 0)
                {
                    sb.Append("[]");
                    break;
                }
                sb.Append('[');
                for (int i = 0; i < list.Count; i++)
                {
                    if (i > 0) sb.Append(ItemSeparator(o));
                    NewLine(sb, o, depth + 1);
                    Write(sb, list[i], o, depth + 1);
                }
                NewLine(sb, o, depth);
                sb.Append(']');
                break;
            case PyDict dict:
                if (dict.Count == 0)
                {
                    sb.Append("{}");
                    break;
                }
                var items = new List<(object? Original, object? Value)>(dict.Count);
                foreach ((object? k, object? v) in dict.Items) items.Add((k, v));
                // json.dumps sorts the keys as they are, before turning them into strings.
                if (o.SortKeys) PyCompare.Sort(items, (x, y) => PyCompare.Order(x.Original, y.Original, "<"));
                sb.Append('{');
                for (int i = 0; i < items.Count; i++)
                {
                    if (i > 0) sb.Append(ItemSeparator(o));
                    NewLine(sb, o, depth + 1);
                    WriteString(sb, Key(items[i].Original), o.EnsureAscii);
                    sb.Append(o.KeySeparator ?? ": ");
                    Write(sb, items[i].Value, o, depth + 1);
                }
                NewLine(sb, o, depth);
                sb.Append('}');
                break;
            default:
                throw TemplateError.Type($"Object of type {PyTypes.TypeName(value)} is not JSON serializable");
        }
    }

    private static string ItemSeparator(PyJsonOptions o) => o.ItemSeparator ?? (o.Indent is null ? ", " : ",");

    private static void NewLine(StringBuilder sb, PyJsonOptions o, int depth)
    {
        if (o.Indent is null) return;
        sb.Append('\n');
        for (int i = 0; i < depth; i++) sb.Append(o.Indent);
    }

    // json.dumps turns str, int, float, bool and None keys into strings; anything else is a TypeError.
    private static string Key(object? key) => key switch
    {
        string s => s,
        PyMarkup m => m.Value,
        null => "null",
        bool b => b ? "true" : "false",
        long l => l.ToString(CultureInfo.InvariantCulture),
        double d => Float(d),
        _ => throw TemplateError.Type($"keys must be str, int, float, bool or None, not {PyTypes.TypeName(key)}"),
    };

    private static string Float(double d) =>
        double.IsNaN(d) ? "NaN" : double.IsPositiveInfinity(d) ? "Infinity" : double.IsNegativeInfinity(d) ? "-Infinity" : PyText.FloatRepr(d);

    private static void WriteString(StringBuilder sb, string s, bool ensureAscii)
    {
        sb.Append('"');
        foreach (char c in s)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                default:
                    if (c < ' ' || (ensureAscii && c > '~')) sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    else sb.Append(c);
                    break;
            }
        }
        sb.Append('"');
    }
}
