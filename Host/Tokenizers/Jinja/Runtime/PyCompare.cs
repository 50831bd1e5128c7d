namespace PeftHost.Tokenizers.Jinja.Runtime;

/// <summary>Python's == and ordering (&lt;, &lt;=, &gt;, &gt;=) between template values.</summary>
internal static class PyCompare
{
    /// <summary>Python ==: numbers by value (True == 1 == 1.0), strings by code point, lists and dicts by content.</summary>
    public static bool Equal(object? a, object? b)
    {
        // Markup is a str: it compares as its text.
        if (a is PyMarkup ma) a = ma.Value;
        if (b is PyMarkup mb) b = mb.Value;
        if (ReferenceEquals(a, b)) return true;
        switch (a)
        {
            case null: return b is null;
            case Undefined: return b is Undefined;
            case string sa: return b is string sb && string.Equals(sa, sb, StringComparison.Ordinal);
            case bool or long or double:
                if (!PyTypes.IsNumber(b)) return false;
                if (PyTypes.IsInteger(a) && PyTypes.IsInteger(b)) return PyTypes.AsLong(a) == PyTypes.AsLong(b);
                return PyTypes.AsDouble(a) == PyTypes.AsDouble(b);
            case PyList la:
                if (b is not PyList lb || la.IsTuple != lb.IsTuple || la.Count != lb.Count) return false;
                for (int i = 0; i < la.Count; i++)
                {
                    if (!Equal(la[i], lb[i])) return false;
                }
                return true;
            case PyDict da:
                if (b is not PyDict db || da.Count != db.Count) return false;
                foreach ((object? k, object? v) in da.Items)
                {
                    if (!db.TryGet(k, out object? other) || !Equal(v, other)) return false;
                }
                return true;
            default: return false;
        }
    }

    /// <summary>Python's ordering: numbers, strings (by code point), lists with lists and tuples with tuples; otherwise TypeError.</summary>
    public static int Order(object? a, object? b, string op)
    {
        if (a is PyMarkup ma) a = ma.Value;
        if (b is PyMarkup mb) b = mb.Value;
        if (a is Undefined ua) throw ua.Fail();
        if (b is Undefined ub) throw ub.Fail();
        if (PyTypes.IsNumber(a) && PyTypes.IsNumber(b))
        {
            if (PyTypes.IsInteger(a) && PyTypes.IsInteger(b)) return PyTypes.AsLong(a).CompareTo(PyTypes.AsLong(b));
            double x = PyTypes.AsDouble(a), y = PyTypes.AsDouble(b);
            if (double.IsNaN(x) || double.IsNaN(y)) return int.MinValue; // every comparison with NaN is false
            return x.CompareTo(y);
        }
        if (a is string sa && b is string sb) return CompareCodePoints(sa, sb);
        if (a is PyList la && b is PyList lb && la.IsTuple == lb.IsTuple)
        {
            for (int i = 0; i < Math.Min(la.Count, lb.Count); i++)
            {
                if (!Equal(la[i], lb[i])) return Order(la[i], lb[i], op);
            }
            return la.Count.CompareTo(lb.Count);
        }
        throw TemplateError.Type($"'{op}' not supported between instances of '{PyTypes.TypeName(a)}' and '{PyTypes.TypeName(b)}'");
    }

    public static bool Less(object? a, object? b) => Holds(Order(a, b, "<"), c => c < 0);

    public static bool LessOrEqual(object? a, object? b) => Holds(Order(a, b, "<="), c => c <= 0);

    public static bool Greater(object? a, object? b) => Holds(Order(a, b, ">"), c => c > 0);

    public static bool GreaterOrEqual(object? a, object? b) => Holds(Order(a, b, ">="), c => c >= 0);

    /// <summary>Sorts with a comparison that may raise Python's TypeError (List.Sort would wrap it).</summary>
    public static void Sort<T>(List<T> list, Comparison<T> comparison)
    {
        try
        {
            list.Sort(comparison);
        }
        catch (InvalidOperationException e) when (e.InnerException is TemplateError inner)
        {
            throw inner;
        }
    }

    private static bool Holds(int comparison, Func<int, bool> test) => comparison != int.MinValue && test(comparison);

    // UTF-16 order differs from code point order only between surrogates and U+E000..U+FFFF.
    private static int CompareCodePoints(string a, string b)
    {
        int n = Math.Min(a.Length, b.Length);
        for (int i = 0; i < n; i++)
        {
            char x = a[i], y = b[i];
            if (x == y) continue;
            bool sx = char.IsSurrogate(x), sy = char.IsSurrogate(y);
            if (sx != sy) return sx ? 1 : -1;
            return x.CompareTo(y);
        }
        return a.Length.CompareTo(b.Length);
    }
}
