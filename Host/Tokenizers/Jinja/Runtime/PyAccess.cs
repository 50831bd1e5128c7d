namespace PeftHost.Tokenizers.Jinja.Runtime;

/// <summary>
/// Attribute and item access, slicing, iteration, len() and <c>in</c>, as Jinja's sandboxed environment does
/// them: <c>obj.name</c> tries the Python attribute (a method) before the item, <c>obj[key]</c> the item before
/// the attribute; what is missing is Undefined, and mutating methods are unsafe.
/// </summary>
internal static class PyAccess
{
    public static object? GetAttribute(object? obj, string name)
    {
        switch (obj)
        {
            case Undefined u: throw u.Fail();
            case PyDict dict:
                if (name.StartsWith("__", StringComparison.Ordinal)) return Undefined.Unsafe(obj, name);
                object? method = PyContainerMethods.DictMethod(dict, name);
                if (method is not null) return method;
                return dict.TryGet(name, out object? value) ? value : Undefined.ForMember(obj, name);
            case string s: return (object?)PyStringMethods.Method(s, name) ?? Undefined.ForMember(obj, name);
            case PyMarkup m: return m.Method(name) ?? Undefined.ForMember(obj, name);
            case PyList list: return PyContainerMethods.ListMethod(list, name) ?? Undefined.ForMember(obj, name);
            case Namespace ns: return ns.Attributes.TryGetValue(name, out object? attr) ? attr : Undefined.ForMember(obj, name);
            case LoopInfo loop: return loop.GetAttribute(name);
            default: return Undefined.ForMember(obj, name);
        }
    }

    public static object? GetItem(object? obj, object? key)
    {
        switch (obj)
        {
            case Undefined u: throw u.Fail();
            case PyDict dict:
                if (key is not (PyList { IsTuple: false } or PyDict) && dict.TryGet(key, out object? value)) return value;
                break;
            case PyList list when PyTypes.IsInteger(key):
                long i = PyTypes.AsLong(key);
                if (i < 0) i += list.Count;
                if (i >= 0 && i < list.Count) return list[(int)i];
                return Undefined.ForMember(obj, key);
            case string s when PyTypes.IsInteger(key):
                return CodePoints.At(s, PyTypes.AsLong(key)) ?? (object)Undefined.ForMember(obj, key);
            case PyMarkup m when PyTypes.IsInteger(key):
                return CodePoints.At(m.Value, PyTypes.AsLong(key)) is string ch ? new PyMarkup(ch) : Undefined.ForMember(obj, key);
        }
        // Python's obj[key] failed (TypeError or LookupError): Jinja falls back on the attribute for string keys.
        if (key is string name && obj is not PyDict) return GetAttribute(obj, name);
        if (key is string dictName && obj is PyDict d)
        {
            object? method = dictName.StartsWith("__", StringComparison.Ordinal) ? null : PyContainerMethods.DictMethod(d, dictName);
            return method ?? Undefined.ForMember(obj, key);
        }
        return Undefined.ForMember(obj, key);
    }

    /// <summary>
    /// <c>obj[start:stop:step]</c>. Jinja compiles slices to plain Python subscripts (not its getitem), so a slice
    /// of something that is not a sequence, or with bounds that are not integers or None, is Python's TypeError.
    /// </summary>
    public static object? Slice(object? obj, object? start, object? stop, object? step)
    {
        if (obj is Undefined u) throw u.Fail();
        if (obj is PyMarkup markup) return new PyMarkup((string)Slice(markup.Value, start, stop, step)!);
        if (obj is not (string or PyList)) throw TemplateError.Type(obj is PyDict ? "unhashable type: 'slice'" : $"'{PyTypes.TypeName(obj)}' object is not subscriptable");
        if (!TryBound(start, out long? a) || !TryBound(stop, out long? b) || !TryBound(step, out long? c))
            throw TemplateError.Type("slice indices must be integers or None or have an __index__ method");
        switch (obj)
        {
            case string s: return CodePoints.Slice(s, a, b, c);
            case PyList list:
                (int from, int count, int by) = PySlice.Resolve(list.Count, a, b, c);
                var items = new List<object?>(count);
                for (int i = 0, at = from; i < count; i++, at += by) items.Add(list[at]);
                return new PyList(items, list.IsTuple);
            default: throw new InvalidOperationException("unreachable: only strings and lists are sliced");
        }
    }

    private static bool TryBound(object? value, out long? bound)
    {
        bound = null;
        if (value is null) return true;
        if (!PyTypes.IsInteger(value)) return false;
        bound = PyTypes.AsLong(value);
        return true;
    }

    /// <summary>Python's iter(): list items, dict keys, string characters; Undefined is empty; None and numbers are a TypeError.</summary>
    public static IEnumerable<object?> Iterate(object? obj) => obj switch
    {
        PyList list => list.Items,
        PyDict dict => dict.Keys,
        string s => CodePoints.Split(s),
        PyMarkup m => CodePoints.Split(m.Value),
        Undefined => [],
        PyIterator it => it.Drain(),
        PyDictView view => view.Items,
        _ => throw TemplateError.Type($"'{PyTypes.TypeName(obj)}' object is not iterable"),
    };

    /// <summary>The items of an iterable as a list (the same list for a PyList).</summary>
    public static IReadOnlyList<object?> ToList(object? obj) => obj is PyList list ? list.Items : [.. Iterate(obj)];

    public static bool IsIterable(object? obj) => obj is PyList or PyDict or string or PyMarkup or Undefined or PyIterator or PyDictView;

    public static long Length(object? obj) => obj switch
    {
        PyList list => list.Count,
        PyDict dict => dict.Count,
        string s => CodePoints.Length(s),
        PyMarkup m => CodePoints.Length(m.Value),
        Undefined => 0,
        LoopInfo loop => loop.Length,
        PyDictView view => view.Items.Count,
        _ => throw TemplateError.Type($"object of type '{PyTypes.TypeName(obj)}' has no len()"),
    };

    /// <summary>Python's <c>item in container</c>.</summary>
    public static bool Contains(object? container, object? item)
    {
        if (container is PyMarkup markup) container = markup.Value;
        switch (container)
        {
            case string s:
                return PyMarkup.TryText(item, out string sub) ? s.Contains(sub, StringComparison.Ordinal) : throw TemplateError.Type($"'in <string>' requires string as left operand, not {PyTypes.TypeName(item)}");
            case PyDict dict: return dict.ContainsKey(item);
            case PyList or PyIterator or Undefined or PyDictView:
                foreach (object? x in Iterate(container))
                {
                    if (PyCompare.Equal(x, item)) return true;
                }
                return false;
            default: throw TemplateError.Type($"argument of type '{PyTypes.TypeName(container)}' is not iterable");
        }
    }

    public static object? Call(RenderContext context, object? callee, CallArguments args) => callee switch
    {
        PyCallable c => c.Invoke(context, args),
        Undefined u => throw u.Fail(),
        _ => throw TemplateError.Type($"'{PyTypes.TypeName(callee)}' object is not callable"),
    };
}
