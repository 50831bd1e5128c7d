using PeftHost.Tokenizers.Jinja.Runtime;

namespace PeftHost.Tokenizers.Jinja.Library;

/// <summary>Jinja's global functions: range (capped as the sandbox caps it), dict, namespace.</summary>
internal static class Globals
{
    /// <summary>The sandbox's MAX_RANGE: larger ranges are refused.</summary>
    public const int MaxRange = 100_000;

    public static Dictionary<string, object?> Create() => new(StringComparer.Ordinal)
    {
        ["range"] = new PyCallable("range", Range, "type"),
        ["dict"] = new PyCallable("dict", (c, a) => FillDict(new PyDict(), a, "dict"), "type"),
        ["namespace"] = new PyCallable("namespace", Namespace, "type"),
        ["cycler"] = NotSupported("cycler"),
        ["joiner"] = NotSupported("joiner"),
        ["lipsum"] = NotSupported("lipsum"),
    };

    private static PyCallable NotSupported(string name) =>
        new(name, (c, a) => throw TemplateError.Value($"{name}() is not supported by this template interpreter"));

    private static object? Range(RenderContext c, CallArguments a)
    {
        a.NoKeywords("range");
        if (a.Positional.Count is 0 or > 3) throw TemplateError.Type($"range expected 1 to 3 arguments, got {a.Positional.Count}");
        long[] v = [.. a.Positional.Select(x => PyTypes.IsInteger(x) ? PyTypes.AsLong(x) : throw TemplateError.Type($"'{PyTypes.TypeName(x)}' object cannot be interpreted as an integer"))];
        (long start, long stop, long step) = v.Length switch
        {
            1 => (0L, v[0], 1L),
            2 => (v[0], v[1], 1L),
            _ => (v[0], v[1], v[2]),
        };
        if (step == 0) throw TemplateError.Value("range() arg 3 must not be zero");
        Int128 span = step > 0 ? (Int128)stop - start : (Int128)start - stop;
        Int128 count = span <= 0 ? 0 : (span + Math.Abs(step) - 1) / Math.Abs(step);
        if (count > MaxRange) throw TemplateError.Overflow($"Range too big. The sandbox blocks ranges larger than MAX_RANGE ({MaxRange}).");
        var items = new List<object?>((int)count);
        for (long i = 0, x = start; i < (long)count; i++, x += step) items.Add(x);
        return new PyList(items);
    }

    private static object? Namespace(RenderContext c, CallArguments a)
    {
        var dict = FillDict(new PyDict(), a, "namespace");
        var ns = new Runtime.Namespace();
        foreach ((object? k, object? v) in dict.Items) ns.Attributes[(string)k!] = v;
        return ns;
    }

    // dict(mapping_or_pairs, **kwargs), as Python's dict() and Jinja's namespace() take them.
    private static PyDict FillDict(PyDict dict, CallArguments a, string name)
    {
        if (a.Positional.Count > 1) throw TemplateError.Type($"{name} expected at most 1 argument, got {a.Positional.Count}");
        if (a.Positional.Count == 1)
        {
            object? source = a.Positional[0];
            if (source is PyDict from)
            {
                foreach ((object? k, object? v) in from.Items) dict.Set(Key(k, name), v);
            }
            else
            {
                foreach (object? pair in PyAccess.Iterate(source))
                {
                    IReadOnlyList<object?> kv = PyAccess.IsIterable(pair) ? PyAccess.ToList(pair) : throw TemplateError.Type($"cannot convert {name} update sequence element to a sequence");
                    if (kv.Count != 2) throw TemplateError.Value($"{name} update sequence element has length {kv.Count}; 2 is required");
                    dict.Set(Key(kv[0], name), kv[1]);
                }
            }
        }
        foreach ((string k, object? v) in a.Keywords) dict.Set(k, v);
        return dict;
    }

    private static object? Key(object? key, string name) =>
        name == "namespace" && key is not string ? throw TemplateError.Type("namespace attribute names must be strings") : key;
}
