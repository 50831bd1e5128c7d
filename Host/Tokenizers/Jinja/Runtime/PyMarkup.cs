using System.Text;

namespace PeftHost.Tokenizers.Jinja.Runtime;

/// <summary>
/// markupsafe's Markup, a string marked safe (what |safe, |e and Jinja's own |tojson give). It prints as its
/// text, equals and hashes as that string; adding a plain string to it, either side, HTML-escapes that
/// string, <c>%</c> escapes the values it formats, and its str methods give Markup back (escaping string
/// arguments where markupsafe does).
/// </summary>
internal sealed class PyMarkup(string value)
{
    // The str methods markupsafe wraps so that they return Markup (the first group also escapes string arguments).
    private static readonly HashSet<string> EscapingMethods = new(StringComparer.Ordinal)
    {
        "capitalize", "title", "lower", "upper", "replace", "ljust", "rjust", "lstrip", "rstrip", "center", "strip",
        "expandtabs", "swapcase", "zfill", "partition", "rpartition",
    };

    private static readonly HashSet<string> WrappingMethods = new(StringComparer.Ordinal) { "split", "rsplit", "splitlines" };

    public string Value { get; } = value;

    /// <summary>markupsafe.escape: Markup stays as it is; anything else becomes the escaped text of its str().</summary>
    public static PyMarkup Escape(object? v) => v as PyMarkup ?? new PyMarkup(Html(PyText.Str(v)));

    /// <summary>&amp; &lt; &gt; " ' as markupsafe writes them.</summary>
    public static string Html(string s)
    {
        if (s.AsSpan().IndexOfAny("&<>\"'") < 0) return s;
        var sb = new StringBuilder(s.Length + 16);
        foreach (char ch in s)
        {
            sb.Append(ch switch
            {
                '&' => "&amp;",
                '<' => "&lt;",
                '>' => "&gt;",
                '"' => "&#34;",
                '\'' => "&#39;",
                _ => ch.ToString(),
            });
        }
        return sb.ToString();
    }

    /// <summary>The text of a str or a Markup.</summary>
    public static bool TryText(object? v, out string text)
    {
        switch (v)
        {
            case string s:
                text = s;
                return true;
            case PyMarkup m:
                text = m.Value;
                return true;
            default:
                text = "";
                return false;
        }
    }

    /// <summary>Markup + other (or other + Markup when <paramref name="markupOnLeft"/> is false).</summary>
    public static object Add(PyMarkup markup, object? other, bool markupOnLeft)
    {
        if (!TryText(other, out _)) throw TemplateError.Type(markupOnLeft
            ? $"unsupported operand type(s) for +: 'Markup' and '{PyTypes.TypeName(other)}'"
            : $"unsupported operand type(s) for +: '{PyTypes.TypeName(other)}' and 'Markup'");
        string escaped = Escape(other).Value;
        return new PyMarkup(markupOnLeft ? markup.Value + escaped : escaped + markup.Value);
    }

    public object? Method(string name)
    {
        PyCallable? plain = PyStringMethods.Method(Value, name);
        if (plain is null) return null;
        if (name == "join")
        {
            return new PyCallable(name, (c, a) => new PyMarkup(
                string.Join(Value, PyAccess.Iterate(a.Bind("join", 1, "iterable")[0]).Select(x => Escape(x).Value))));
        }
        if (EscapingMethods.Contains(name)) return new PyCallable(name, (c, a) => Wrap(plain.Invoke(c, EscapeArguments(a))));
        if (WrappingMethods.Contains(name)) return new PyCallable(name, (c, a) => Wrap(plain.Invoke(c, Unwrap(a))));
        return new PyCallable(name, (c, a) => plain.Invoke(c, Unwrap(a)));
    }

    /// <summary>A str result as Markup (and the strings of a list or tuple result).</summary>
    public static object? Wrap(object? result) => result switch
    {
        string s => new PyMarkup(s),
        PyList list => new PyList([.. list.Items.Select(i => i is string s ? new PyMarkup(s) : i)], list.IsTuple),
        _ => result,
    };

    private static CallArguments EscapeArguments(CallArguments a) => new(
        [.. a.Positional.Select(EscapeArgument)], [.. a.Keywords.Select(k => new KeyValuePair<string, object?>(k.Key, EscapeArgument(k.Value)))]);

    private static object? EscapeArgument(object? v) => TryText(v, out _) ? Escape(v).Value : v;

    private static CallArguments Unwrap(CallArguments a) => new(
        [.. a.Positional.Select(v => v is PyMarkup m ? m.Value : v)], [.. a.Keywords.Select(k => new KeyValuePair<string, object?>(k.Key, k.Value is PyMarkup m ? m.Value : k.Value))]);
}
