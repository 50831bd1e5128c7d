using System.Globalization;
using System.Text;
using PeftHost.Tokenizers.Jinja.Runtime;

namespace PeftHost.Tokenizers.Jinja.Library;

/// <summary>
/// Jinja 3.1's builtin filters (jinja2/filters.py), with its argument names, defaults and quirks: select,
/// map, reverse and items give lazy iterators; string filters take str() of their input; tojson is Jinja's
/// HTML-safe variant with sorted keys (transformers replaces it, see ChatTemplateEnvironment).
/// </summary>
internal static class Filters
{
    /// <summary>Filters Jinja has that this interpreter leaves out (a template using one gets a clear error).</summary>
    public static readonly IReadOnlySet<string> NotSupported = new HashSet<string>(StringComparer.Ordinal)
    {
        "filesizeformat", "groupby", "pprint", "random", "striptags", "urlencode", "urlize", "wordwrap", "xmlattr",
    };

    /// <summary>Filters Jinja marks pass_context: it never computes them when compiling.</summary>
    public static readonly IReadOnlySet<string> NeedContext = new HashSet<string>(StringComparer.Ordinal)
    {
        "map", "reject", "rejectattr", "select", "selectattr",
    };

    public static Dictionary<string, FilterFunction> Create() => new(StringComparer.Ordinal)
    {
        ["abs"] = Abs,
        ["attr"] = Attr,
        ["batch"] = Batch,
        ["capitalize"] = (c, v, a) => Unary(a, "capitalize", KeepMarkup(v, PyStringMethods.Capitalize(PyText.Str(v)))),
        ["center"] = Center,
        ["count"] = Length,
        ["d"] = Default,
        ["default"] = Default,
        ["dictsort"] = DictSort,
        ["e"] = (c, v, a) => Unary(a, "escape", PyMarkup.Escape(v)),
        ["escape"] = (c, v, a) => Unary(a, "escape", PyMarkup.Escape(v)),
        ["first"] = First,
        ["float"] = Float,
        ["forceescape"] = (c, v, a) => Unary(a, "forceescape", PyMarkup.Escape(PyText.Str(v))),
        ["format"] = Format,
        ["indent"] = Indent,
        ["int"] = Int,
        ["items"] = Items,
        ["join"] = Join,
        ["last"] = Last,
        ["length"] = Length,
        ["list"] = (c, v, a) => Unary(a, "list", new PyList([.. PyAccess.Iterate(v)])),
        ["lower"] = (c, v, a) => Unary(a, "lower", KeepMarkup(v, PyStringMethods.Lower(PyText.Str(v)))),
        ["map"] = Map,
        ["max"] = (c, v, a) => MinOrMax(c, v, a, "max", max: true),
        ["min"] = (c, v, a) => MinOrMax(c, v, a, "min", max: false),
        ["reject"] = (c, v, a) => SelectOrReject(c, v, a, select: false, attribute: false),
        ["rejectattr"] = (c, v, a) => SelectOrReject(c, v, a, select: false, attribute: true),
        ["replace"] = Replace,
        ["reverse"] = Reverse,
        ["round"] = Round,
        ["safe"] = (c, v, a) => Unary(a, "safe", v as PyMarkup ?? new PyMarkup(PyText.Str(v))),
        ["select"] = (c, v, a) => SelectOrReject(c, v, a, select: true, attribute: false),
        ["selectattr"] = (c, v, a) => SelectOrReject(c, v, a, select: true, attribute: true),
        ["slice"] = Slice,
        ["sort"] = Sort,
        ["string"] = (c, v, a) => Unary(a, "string", v as PyMarkup ?? (object)PyText.Str(v)),
        ["sum"] = Sum,
        ["title"] = (c, v, a) => Unary(a, "title", Title(PyText.Str(v))),
        ["tojson"] = ToJson,
        ["trim"] = Trim,
        ["truncate"] = Truncate,
        ["unique"] = Unique,
        ["upper"] = (c, v, a) => Unary(a, "upper", KeepMarkup(v, PyStringMethods.Upper(PyText.Str(v)))),
        ["wordcount"] = (c, v, a) => Unary(a, "wordcount", WordCount(PyText.Str(v))),
    };

    // Jinja's string filters work on soft_str(value), which leaves Markup as Markup.
    private static object KeepMarkup(object? input, string result) => input is PyMarkup ? new PyMarkup(result) : result;

    private static object? Unary(CallArguments a, string name, object? result)
    {
        a.Bind(name, 0);
        return result;
    }

    private static object? Abs(RenderContext c, object? v, CallArguments a)
    {
        a.Bind("abs", 0);
        return v switch
        {
            // (object) keeps an int an int: the arms would otherwise share the type double.
            bool or long => PyTypes.AsLong(v) == long.MinValue ? throw TemplateError.IntegerOverflow() : (object)Math.Abs(PyTypes.AsLong(v)),
            double d => Math.Abs(d),
            _ => throw TemplateError.Type($"bad operand type for abs(): '{PyTypes.TypeName(v)}'"),
        };
    }

    // do_attr looks only at the Python attribute: a dict key is not an attribute.
    private static object? Attr(RenderContext c, object? v, CallArguments a)
    {
        string name = Str(a.Bind("attr", 1, "name")[0], "attr");
        if (v is PyDict dict) return PyContainerMethods.DictMethod(dict, name) ?? Undefined.ForMember(v, name);
        return PyAccess.GetAttribute(v, name);
    }

    private static object? Batch(RenderContext c, object? v, CallArguments a)
    {
        object?[] p = a.Bind("batch", 1, "linecount", "fill_with");
        int size = PyTypes.ToInt32(p[0], "linecount");
        object? fill = CallArguments.Or<object?>(p[1], null);
        return new PyIterator(BatchItems(v, size, fill));
    }

    private static IEnumerable<object?> BatchItems(object? v, int size, object? fill)
    {
        var current = new List<object?>();
        foreach (object? item in PyAccess.Iterate(v))
        {
            if (current.Count == size)
            {
                yield return new PyList(current);
                current = [];
            }
            current.Add(item);
        }
        if (current.Count == 0) yield break;
        if (fill is not null)
        {
            while (current.Count < size) current.Add(fill);
        }
        yield return new PyList(current);
    }

    private static object? Center(RenderContext c, object? v, CallArguments a)
    {
        object? width = a.Bind("center", 0, "width")[0];
        object? center = v is PyMarkup m ? m.Method("center") : PyStringMethods.Method(PyText.Str(v), "center");
        return ((PyCallable)center!).Invoke(c, new CallArguments([CallArguments.IsMissing(width) ? 80L : width], []));
    }

    private static object? Length(RenderContext c, object? v, CallArguments a)
    {
        a.Bind("length", 0);
        return PyAccess.Length(v);
    }

    private static object? Default(RenderContext c, object? v, CallArguments a)
    {
        object?[] p = a.Bind("default", 0, "default_value", "boolean");
        bool boolean = PyTypes.Truthy(CallArguments.Or<object?>(p[1], false));
        return v is Undefined || (boolean && !PyTypes.Truthy(v)) ? CallArguments.Or<object?>(p[0], "") : v;
    }

    private static object? DictSort(RenderContext c, object? v, CallArguments a)
    {
        object?[] p = a.Bind("dictsort", 0, "case_sensitive", "by", "reverse");
        bool caseSensitive = PyTypes.Truthy(CallArguments.Or<object?>(p[0], false));
        string by = CallArguments.Or<object?>(p[1], "key") as string ?? "";
        bool reverse = PyTypes.Truthy(CallArguments.Or<object?>(p[2], false));
        int position = by switch
        {
            "key" => 0,
            "value" => 1,
            _ => throw TemplateError.FilterArgument("You can only sort by either \"key\" or \"value\""),
        };
        if (v is Undefined u) throw u.Fail();
        if (v is not PyDict dict) throw TemplateError.Attribute($"'{PyTypes.TypeName(v)}' object has no attribute 'items'");
        List<object?> items = dict.ItemTuples().Items;
        SortBy(items, item => IgnoreCase(((PyList)item!)[position], caseSensitive), reverse);
        return new PyList(items);
    }

    private static object? First(RenderContext c, object? v, CallArguments a)
    {
        a.Bind("first", 0);
        foreach (object? item in PyAccess.Iterate(v)) return item;
        return Undefined.WithHint("No first item, sequence was empty.");
    }

    private static object? Last(RenderContext c, object? v, CallArguments a)
    {
        a.Bind("last", 0);
        IReadOnlyList<object?> items = v switch
        {
            PyList or PyDict or string or Undefined or PyDictView => PyAccess.ToList(v),
            _ => throw TemplateError.Type($"'{PyTypes.TypeName(v)}' object is not reversible"),
        };
        return items.Count > 0 ? items[^1] : Undefined.WithHint("No last item, sequence was empty.");
    }

    private static object? Float(RenderContext c, object? v, CallArguments a)
    {
        object? fallback = CallArguments.Or<object?>(a.Bind("float", 0, "default")[0], 0.0);
        return v switch
        {
            Undefined u => throw u.Fail(),
            bool or long or double => PyTypes.AsDouble(v),
            string or PyMarkup => ParsePythonFloat(PyText.Str(v)) ?? fallback,
            _ => fallback,
        };
    }

    private static object? Int(RenderContext c, object? v, CallArguments a)
    {
        object?[] p = a.Bind("int", 0, "default", "base");
        object? fallback = CallArguments.Or<object?>(p[0], 0L);
        int radix = CallArguments.IsMissing(p[1]) ? 10 : PyTypes.ToInt32(p[1], "base");
        switch (v)
        {
            case Undefined u: throw u.Fail();
            case bool or long: return PyTypes.AsLong(v);
            case double d:
                if (double.IsNaN(d)) return fallback;
                if (double.IsInfinity(d) || Math.Abs(d) >= 9.2233720368547758e18) throw TemplateError.Overflow("cannot convert float infinity or a float beyond 64 bits to integer");
                return (long)Math.Truncate(d);
            case string or PyMarkup:
                string s = PyText.Str(v);
                if (ParsePythonInt(s, radix) is long parsed) return parsed;
                if (ParsePythonFloat(s) is double f && !double.IsNaN(f) && !double.IsInfinity(f) && Math.Abs(f) < 9.2233720368547758e18) return (long)Math.Truncate(f);
                return fallback;
            default: return fallback;
        }
    }

    private static object? Format(RenderContext c, object? v, CallArguments a)
    {
        if (a.Positional.Count > 0 && a.Keywords.Count > 0) throw TemplateError.FilterArgument("can't handle positional and keyword arguments at the same time");
        object? values;
        if (a.Keywords.Count > 0)
        {
            var dict = new PyDict();
            foreach ((string k, object? x) in a.Keywords) dict.Set(k, x);
            values = dict;
        }
        else
        {
            values = new PyList([.. a.Positional], isTuple: true);
        }
        return v is PyMarkup m ? new PyMarkup(PyPercentFormat.Format(m.Value, values, escape: true)) : PyPercentFormat.Format(PyText.Str(v), values);
    }

    private static object? Indent(RenderContext c, object? v, CallArguments a)
    {
        object?[] p = a.Bind("indent", 0, "width", "first", "blank");
        object? width = CallArguments.Or<object?>(p[0], 4L);
        string indention = width is string w ? w : new string(' ', Math.Max(0, PyTypes.ToInt32(width, "width")));
        bool first = PyTypes.Truthy(CallArguments.Or<object?>(p[1], false));
        bool blank = PyTypes.Truthy(CallArguments.Or<object?>(p[2], false));
        if (v is Undefined u) throw u.Fail();
        // do_indent appends "\n" to its input as it is (a quirk for splitlines): only a string works.
        // (a list takes the "\n" as one more item, then has no splitlines)
        if (v is PyList { IsTuple: false }) throw TemplateError.Attribute("'list' object has no attribute 'splitlines'");
        if (!PyMarkup.TryText(v, out string text)) throw TemplateError.Type($"unsupported operand type(s) for +=: '{PyTypes.TypeName(v)}' and 'str'");
        string s = text + "\n";
        List<object?> lines = ((PyList)PyStringMethods.Method(s, "splitlines")!.Invoke(c, CallArguments.None)!).Items;
        var sb = new StringBuilder();
        if (blank)
        {
            sb.AppendJoin("\n" + indention, lines.Select(l => (string)l!));
        }
        else
        {
            sb.Append((string)lines[0]!);
            for (int i = 1; i < lines.Count; i++)
            {
                string line = (string)lines[i]!;
                sb.Append('\n');
                if (line.Length > 0) sb.Append(indention);
                sb.Append(line);
            }
        }
        return KeepMarkup(v, first ? indention + sb : sb.ToString());
    }

    private static object? Items(RenderContext c, object? v, CallArguments a)
    {
        a.Bind("items", 0);
        return new PyIterator(ItemPairs(v));
    }

    // A generator in Jinja: a value that is not a mapping fails only when the items are read.
    private static IEnumerable<object?> ItemPairs(object? v)
    {
        if (v is Undefined) yield break;
        if (v is not PyDict dict) throw TemplateError.Type("Can only get item pairs from a mapping.");
        foreach (object? pair in dict.ItemTuples().Items) yield return pair;
    }

    private static object? Join(RenderContext c, object? v, CallArguments a)
    {
        object?[] p = a.Bind("join", 0, "d", "attribute");
        string separator = PyText.Str(CallArguments.Or<object?>(p[0], ""));
        Func<object?, object?> get = AttributeGetter(CallArguments.Or<object?>(p[1], null), null);
        var sb = new StringBuilder();
        bool firstItem = true;
        foreach (object? item in PyAccess.Iterate(v))
        {
            if (!firstItem) sb.Append(separator);
            firstItem = false;
            sb.Append(PyText.Str(get(item)));
        }
        return sb.ToString();
    }

    private static object? Map(RenderContext c, object? v, CallArguments a)
    {
        Func<object?, object?> f;
        if (a.Positional.Count == 0 && a.Keywords.Any(k => k.Key == "attribute"))
        {
            object? attribute = null, fallback = null;
            foreach ((string k, object? x) in a.Keywords)
            {
                if (k == "attribute") attribute = x;
                else if (k == "default") fallback = x;
                else throw TemplateError.FilterArgument($"Unexpected keyword argument {PyText.Repr(k)}");
            }
            f = AttributeGetter(attribute, fallback);
        }
        else
        {
            if (a.Positional.Count == 0) throw TemplateError.FilterArgument("map requires a filter argument");
            string name = Str(a.Positional[0], "map");
            FilterFunction filter = LookupFilter(c, name);
            var rest = new CallArguments([.. a.Positional.Skip(1)], a.Keywords);
            f = item => filter(c, item, rest);
        }
        return new PyIterator(MapItems(v, f));
    }

    private static IEnumerable<object?> MapItems(object? v, Func<object?, object?> f)
    {
        if (!PyTypes.Truthy(v)) yield break;
        foreach (object? item in PyAccess.Iterate(v)) yield return f(item);
    }

    private static object? MinOrMax(RenderContext c, object? v, CallArguments a, string name, bool max)
    {
        object?[] p = a.Bind(name, 0, "case_sensitive", "attribute");
        bool caseSensitive = PyTypes.Truthy(CallArguments.Or<object?>(p[0], false));
        Func<object?, object?> key = AttributeGetter(CallArguments.Or<object?>(p[1], null), null);
        object? best = null;
        object? bestKey = null;
        bool any = false;
        foreach (object? item in PyAccess.Iterate(v))
        {
            object? k = IgnoreCase(key(item), caseSensitive);
            if (!any || (max ? PyCompare.Greater(k, bestKey) : PyCompare.Less(k, bestKey)))
            {
                best = item;
                bestKey = k;
            }
            any = true;
        }
        return any ? best : Undefined.WithHint("No aggregated item, sequence was empty.");
    }

    private static object? SelectOrReject(RenderContext c, object? v, CallArguments a, bool select, bool attribute)
    {
        int offset = 0;
        Func<object?, object?> transform = x => x;
        if (attribute)
        {
            if (a.Positional.Count == 0) throw TemplateError.FilterArgument("Missing parameter for attribute name");
            transform = AttributeGetter(a.Positional[0], null);
            offset = 1;
        }
        Func<object?, bool> test;
        if (a.Positional.Count > offset)
        {
            string name = Str(a.Positional[offset], "select");
            TestFunction t = LookupTest(c, name);
            var rest = new CallArguments([.. a.Positional.Skip(offset + 1)], a.Keywords);
            test = x => t(c, x, rest);
        }
        else
        {
            test = PyTypes.Truthy;
        }
        return new PyIterator(Select(v, x => test(transform(x)) == select), "generator");
    }

    private static IEnumerable<object?> Select(object? v, Func<object?, bool> keep)
    {
        if (!PyTypes.Truthy(v)) yield break;
        foreach (object? item in PyAccess.Iterate(v))
        {
            if (keep(item)) yield return item;
        }
    }

    private static object? Replace(RenderContext c, object? v, CallArguments a)
    {
        object?[] p = a.Bind("replace", 2, "old", "new", "count");
        long count = CallArguments.IsMissing(p[2]) || p[2] is null ? -1 : PyTypes.ToIndex(p[2], "count");
        return PyStringMethods.PyReplace(PyText.Str(v), PyText.Str(p[0]), PyText.Str(p[1]), count);
    }

    private static object? Reverse(RenderContext c, object? v, CallArguments a)
    {
        a.Bind("reverse", 0);
        if (v is string s) return CodePoints.Slice(s, null, null, -1);
        if (!PyAccess.IsIterable(v)) throw TemplateError.FilterArgument("argument must be iterable");
        if (v is PyMarkup markup) return new PyMarkup(CodePoints.Slice(markup.Value, null, null, -1));
        var items = new List<object?>(PyAccess.ToList(v));
        items.Reverse();
        return v is PyList or PyDict or Undefined or PyDictView ? new PyIterator(items, v is PyDict ? "dict_reversekeyiterator" : "list_reverseiterator") : new PyList(items);
    }

    private static object? Round(RenderContext c, object? v, CallArguments a)
    {
        object?[] p = a.Bind("round", 0, "precision", "method");
        int precision = CallArguments.IsMissing(p[0]) ? 0 : PyTypes.ToInt32(p[0], "precision");
        string method = CallArguments.Or<object?>(p[1], "common") as string ?? "";
        if (method is not ("common" or "ceil" or "floor")) throw TemplateError.FilterArgument("method must be common, ceil or floor");
        if (PyTypes.IsInteger(v) && method == "common") return PyTypes.AsLong(v);
        if (!PyTypes.IsNumber(v)) throw TemplateError.Type($"type {PyTypes.TypeName(v)} doesn't define __round__ method");
        double x = PyTypes.AsDouble(v);
        if (method == "common") return Math.Round(x, Math.Clamp(precision, 0, 15), MidpointRounding.ToEven);
        double scale = Math.Pow(10, precision);
        return (method == "ceil" ? Math.Ceiling(x * scale) : Math.Floor(x * scale)) / scale;
    }

    private static object? Slice(RenderContext c, object? v, CallArguments a)
    {
        object?[] p = a.Bind("slice", 1, "slices", "fill_with");
        int slices = PyTypes.ToInt32(p[0], "slices");
        if (slices <= 0) throw new TemplateError(TemplateErrorKind.ZeroDivision, "integer division or modulo by zero");
        object? fill = CallArguments.Or<object?>(p[1], null);
        return new PyIterator(SliceItems(v, slices, fill));
    }

    private static IEnumerable<object?> SliceItems(object? v, int slices, object? fill)
    {
        IReadOnlyList<object?> seq = PyAccess.ToList(v);
        int perSlice = seq.Count / slices, withExtra = seq.Count % slices, offset = 0;
        for (int n = 0; n < slices; n++)
        {
            int start = offset + n * perSlice;
            if (n < withExtra) offset++;
            int end = offset + (n + 1) * perSlice;
            var part = new List<object?>(seq.Skip(start).Take(end - start));
            if (fill is not null && n >= withExtra) part.Add(fill);
            yield return new PyList(part);
        }
    }

    private static object? Sort(RenderContext c, object? v, CallArguments a)
    {
        object?[] p = a.Bind("sort", 0, "reverse", "case_sensitive", "attribute");
        bool reverse = PyTypes.Truthy(CallArguments.Or<object?>(p[0], false));
        bool caseSensitive = PyTypes.Truthy(CallArguments.Or<object?>(p[1], false));
        object? attribute = CallArguments.Or<object?>(p[2], null);
        // make_multi_attrgetter: "a,b" sorts by a then b.
        List<Func<object?, object?>> keys = attribute is string names && names.Contains(',', StringComparison.Ordinal)
            ? [.. names.Split(',').Select(n => AttributeGetter(n, null))]
            : [AttributeGetter(attribute, null)];
        var items = new List<object?>(PyAccess.Iterate(v));
        // The key is always a list (Jinja's make_multi_attrgetter): items whose attribute is missing compare equal.
        SortBy(items, item => new PyList([.. keys.Select(k => IgnoreCase(k(item), caseSensitive))]), reverse);
        return new PyList(items);
    }

    private static object? Sum(RenderContext c, object? v, CallArguments a)
    {
        object?[] p = a.Bind("sum", 0, "attribute", "start");
        Func<object?, object?> get = AttributeGetter(CallArguments.Or<object?>(p[0], null), null);
        object? total = CallArguments.Or<object?>(p[1], 0L);
        if (total is string) throw TemplateError.Type("sum() can't sum strings [use ''.join(seq) instead]");
        foreach (object? item in PyAccess.Iterate(v)) total = PyArithmetic.Add(total, get(item));
        return total;
    }

    /// <summary>Jinja's title filter: words start after -, whitespace and opening brackets.</summary>
    public static string Title(string s)
    {
        var sb = new StringBuilder(s.Length);
        bool wordStart = true;
        foreach (char ch in s)
        {
            bool separator = ch is '-' or '(' or '{' or '[' or '<' || PyStringMethods.IsSpace(ch);
            if (separator) sb.Append(ch);
            else sb.Append(wordStart ? PyStringMethods.Upper(ch.ToString()) : PyStringMethods.Lower(ch.ToString()));
            wordStart = separator;
        }
        return sb.ToString();
    }

    // Jinja's own tojson: json.dumps(sort_keys=True) made safe for HTML.
    private static object? ToJson(RenderContext c, object? v, CallArguments a)
    {
        object? indent = CallArguments.Or<object?>(a.Bind("tojson", 0, "indent")[0], null);
        string json = PyJson.Dumps(v, new PyJsonOptions { SortKeys = true, Indent = JsonIndent(indent) });
        return new PyMarkup(json.Replace("<", "\\u003c", StringComparison.Ordinal).Replace(">", "\\u003e", StringComparison.Ordinal)
            .Replace("&", "\\u0026", StringComparison.Ordinal).Replace("'", "\\u0027", StringComparison.Ordinal));
    }

    /// <summary>json.dumps' indent: an integer is that many spaces, a string itself, None one line.</summary>
    public static string? JsonIndent(object? indent) => indent switch
    {
        null => null,
        string s => s,
        _ => new string(' ', Math.Max(0, PyTypes.ToInt32(indent, "indent"))),
    };

    private static object? Trim(RenderContext c, object? v, CallArguments a)
    {
        object? chars = CallArguments.Or<object?>(a.Bind("trim", 0, "chars")[0], null);
        if (v is PyMarkup m) return ((PyCallable)m.Method("strip")!).Invoke(c, new CallArguments(chars is null ? [] : [chars], []));
        return PyStringMethods.Strip(PyText.Str(v), chars is null ? null : Str(chars, "trim"), left: true, right: true);
    }

    private static object? Truncate(RenderContext c, object? v, CallArguments a)
    {
        object?[] p = a.Bind("truncate", 0, "length", "killwords", "end", "leeway");
        int length = CallArguments.IsMissing(p[0]) ? 255 : PyTypes.ToInt32(p[0], "length");
        bool killWords = PyTypes.Truthy(CallArguments.Or<object?>(p[1], false));
        string end = PyText.Str(CallArguments.Or<object?>(p[2], "..."));
        int leeway = CallArguments.IsMissing(p[3]) || p[3] is null ? 5 : PyTypes.ToInt32(p[3], "leeway");
        if (length < end.Length) throw TemplateError.Value($"expected length >= {end.Length}, got {length}");
        // do_truncate takes len() of its input as it is: a short list or dict comes back unchanged.
        if (PyAccess.Length(v) <= length + leeway) return v;
        if (!PyMarkup.TryText(v, out string s)) throw TemplateError.Attribute($"'{PyTypes.TypeName(v)}' object has no attribute 'rsplit'");
        string head = CodePoints.Slice(s, null, length - end.Length, null);
        if (v is PyMarkup) end = PyMarkup.Html(end); // Markup + str escapes the str
        if (killWords) return KeepMarkup(v, head + end);
        int space = head.LastIndexOf(' ');
        return KeepMarkup(v, (space >= 0 ? head[..space] : head) + end);
    }

    private static object? Unique(RenderContext c, object? v, CallArguments a)
    {
        object?[] p = a.Bind("unique", 0, "case_sensitive", "attribute");
        bool caseSensitive = PyTypes.Truthy(CallArguments.Or<object?>(p[0], false));
        Func<object?, object?> get = AttributeGetter(CallArguments.Or<object?>(p[1], null), null);
        return new PyIterator(UniqueItems(v, x => IgnoreCase(get(x), caseSensitive)));
    }

    private static IEnumerable<object?> UniqueItems(object? v, Func<object?, object?> key)
    {
        var seen = new PyDict();
        foreach (object? item in PyAccess.Iterate(v))
        {
            object? k = key(item);
            if (seen.ContainsKey(k)) continue;
            seen.Set(k, null);
            yield return item;
        }
    }

    private static long WordCount(string s)
    {
        long n = 0;
        bool inWord = false;
        foreach (char ch in s)
        {
            bool word = char.IsLetterOrDigit(ch) || ch == '_';
            if (word && !inWord) n++;
            inWord = word;
        }
        return n;
    }

    /// <summary>make_attrgetter: "a.b.0" looks up items (then attributes) one part at a time; default replaces Undefined.</summary>
    public static Func<object?, object?> AttributeGetter(object? attribute, object? fallback)
    {
        if (attribute is null) return x => x;
        object?[] parts = attribute is string s
            ? [.. s.Split('.').Select(part => long.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out long i) ? (object?)i : part)]
            : [attribute];
        return item =>
        {
            foreach (object? part in parts)
            {
                item = PyAccess.GetItem(item, part);
                if (fallback is not null && item is Undefined) item = fallback;
            }
            return item;
        };
    }

    private static object? IgnoreCase(object? value, bool caseSensitive) =>
        !caseSensitive && value is string s ? s.ToLowerInvariant() : value;

    private static void SortBy(List<object?> items, Func<object?, object?> key, bool reverse)
    {
        // Python's sort is stable; so is this (the index breaks ties), also in reverse.
        var keyed = items.Select((item, index) => (Key: key(item), Item: item, Index: index)).ToList();
        PyCompare.Sort(keyed, (x, y) =>
        {
            int order = PyCompare.Less(x.Key, y.Key) ? -1 : PyCompare.Less(y.Key, x.Key) ? 1 : 0;
            if (reverse) order = -order;
            return order != 0 ? order : x.Index.CompareTo(y.Index);
        });
        items.Clear();
        items.AddRange(keyed.Select(k => k.Item));
    }

    private static FilterFunction LookupFilter(RenderContext c, string name) =>
        c.Environment.Filters.TryGetValue(name, out FilterFunction? f) ? f : throw new TemplateError(TemplateErrorKind.Value, $"No filter named {PyText.Repr(name)}.");

    private static TestFunction LookupTest(RenderContext c, string name) =>
        c.Environment.Tests.TryGetValue(name, out TestFunction? t) ? t : throw new TemplateError(TemplateErrorKind.Value, $"No test named {PyText.Repr(name)}.");

    private static string Str(object? value, string filter) =>
        value as string ?? throw TemplateError.Type($"{filter}: expected a string argument, got {PyTypes.TypeName(value)}");

    /// <summary>Python's float(str): surrounding whitespace, underscores between digits, inf and nan allowed.</summary>
    public static double? ParsePythonFloat(string s)
    {
        string t = PyStringMethods.Strip(s, null, true, true);
        string lower = t.ToLowerInvariant().TrimStart('+', '-');
        if (lower is "inf" or "infinity" or "nan")
        {
            double special = lower == "nan" ? double.NaN : double.PositiveInfinity;
            return t.StartsWith('-') ? -special : special;
        }
        if (t.Length == 0 || t.Contains("__", StringComparison.Ordinal) || t.StartsWith('_') || t.EndsWith('_')) return null;
        foreach (char ch in t)
        {
            if (!(char.IsAsciiDigit(ch) || ch is '.' or 'e' or 'E' or '+' or '-' or '_')) return null;
        }
        return double.TryParse(t.Replace("_", "", StringComparison.Ordinal), NumberStyles.Float, CultureInfo.InvariantCulture, out double d) ? d : null;
    }

    /// <summary>Python's int(str, base) for bases 2..36 (and 0: the literal's prefix decides).</summary>
    public static long? ParsePythonInt(string s, int radix)
    {
        string t = PyStringMethods.Strip(s, null, true, true);
        bool negative = t.StartsWith('-');
        if (t.StartsWith('-') || t.StartsWith('+')) t = t[1..];
        if (radix is 0 or 2 or 8 or 16 && t.Length > 1 && t[0] == '0' && char.ToLowerInvariant(t[1]) is 'b' or 'o' or 'x')
        {
            int prefix = char.ToLowerInvariant(t[1]) switch { 'b' => 2, 'o' => 8, _ => 16 };
            if (radix != 0 && radix != prefix) return null;
            radix = prefix;
            t = t[2..].TrimStart('_');
        }
        if (radix == 0) radix = 10;
        if (t.Length == 0 || t.StartsWith('_') || t.EndsWith('_') || t.Contains("__", StringComparison.Ordinal) || radix is < 2 or > 36) return null;
        Int128 value = 0;
        foreach (char ch in t)
        {
            if (ch == '_') continue;
            int digit = char.IsAsciiDigit(ch) ? ch - '0' : char.IsAsciiLetter(ch) ? char.ToLowerInvariant(ch) - 'a' + 10 : 99;
            if (digit >= radix) return null;
            value = value * radix + digit;
            if (value > (Int128)long.MaxValue + 1) throw TemplateError.IntegerOverflow();
        }
        if (negative) value = -value;
        return value >= long.MinValue && value <= long.MaxValue ? (long)value : throw TemplateError.IntegerOverflow();
    }
}
