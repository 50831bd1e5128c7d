namespace PeftHost.Tokenizers.Jinja.Runtime;

/// <summary>
/// The methods of dict (get, items, keys, values, copy) and list/tuple (index, count, copy); the mutating ones
/// (append, pop, update, ...) are what Jinja's immutable sandbox refuses: they are unsafe Undefined values.
/// </summary>
internal static class PyContainerMethods
{
    public static object? DictMethod(PyDict dict, string name) => name switch
    {
        "get" => Bind(name, (c, a) =>
        {
            object?[] p = a.Bind("get", 1, "key", "default");
            if (p[0] is PyList { IsTuple: false } or PyDict) throw TemplateError.Type($"unhashable type: '{PyTypes.TypeName(p[0])}'");
            return dict.TryGet(p[0], out object? v) ? v : CallArguments.Or<object?>(p[1], null);
        }),
        "items" => Bind(name, (c, a) => NoArgs(a, name, new PyDictView("dict_items", dict.ItemTuples().Items))),
        "keys" => Bind(name, (c, a) => NoArgs(a, name, new PyDictView("dict_keys", [.. dict.Keys]))),
        "values" => Bind(name, (c, a) => NoArgs(a, name, new PyDictView("dict_values", [.. dict.Values]))),
        "copy" => Bind(name, (c, a) =>
        {
            a.Bind(name, 0);
            var copy = new PyDict();
            foreach ((object? k, object? v) in dict.Items) copy.Set(k, v);
            return copy;
        }),
        "clear" or "pop" or "popitem" or "setdefault" or "update" => Undefined.Unsafe(dict, name),
        _ => null,
    };

    public static object? ListMethod(PyList list, string name) => name switch
    {
        "index" => Bind(name, (c, a) =>
        {
            object? item = a.Bind("index", 1, "value")[0];
            for (int i = 0; i < list.Count; i++)
            {
                if (PyCompare.Equal(list[i], item)) return (long)i;
            }
            throw TemplateError.Value($"{PyText.Repr(item)} is not in {PyTypes.TypeName(list)}");
        }),
        "count" => Bind(name, (c, a) =>
        {
            object? item = a.Bind("count", 1, "value")[0];
            long n = 0;
            foreach (object? x in list.Items)
            {
                if (PyCompare.Equal(x, item)) n++;
            }
            return n;
        }),
        "copy" when !list.IsTuple => Bind(name, (c, a) => NoArgs(a, name, new PyList([.. list.Items]))),
        "append" or "clear" or "extend" or "insert" or "pop" or "remove" or "reverse" or "sort" when !list.IsTuple => Undefined.Unsafe(list, name),
        _ => null,
    };

    private static PyCallable Bind(string name, PyFunction f) => new(name, f, "builtin_function_or_method");

    private static object NoArgs(CallArguments a, string name, object result)
    {
        a.Bind(name, 0);
        return result;
    }
}
