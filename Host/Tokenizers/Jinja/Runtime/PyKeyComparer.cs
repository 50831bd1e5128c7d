using System.Runtime.CompilerServices;

namespace PeftHost.Tokenizers.Jinja.Runtime;

/// <summary>
/// Python's hashing and equality for dict keys: numbers by value across bool/int/float, strings by
/// ordinal, tuples by their items; lists and dicts are unhashable (TypeError), anything else by identity.
/// </summary>
internal sealed class PyKeyComparer : IEqualityComparer<object>
{
    public static PyKeyComparer Instance { get; } = new();

    // None as a key: the ordered dictionary does not take null keys.
    private static readonly object NoneKey = new();

    public static object Box(object? key)
    {
        if (key is null) return NoneKey;
        if (key is PyList { IsTuple: false } or PyDict) throw TemplateError.Type($"unhashable type: '{PyTypes.TypeName(key)}'");
        return key;
    }

    public static object? Unbox(object key) => ReferenceEquals(key, NoneKey) ? null : key;

    public new bool Equals(object? x, object? y) => PyCompare.Equal(x is null ? null : Unbox(x), y is null ? null : Unbox(y));

    public int GetHashCode(object obj) => Hash(Unbox(obj));

    private static int Hash(object? v)
    {
        switch (v)
        {
            case null: return 0x2545F491;
            case bool b: return b ? 1 : 0;
            case long l: return l.GetHashCode();
            case double d:
                return d == Math.Floor(d) && Math.Abs(d) < 9.2e18 ? ((long)d).GetHashCode() : d.GetHashCode();
            case string s: return s.GetHashCode(StringComparison.Ordinal);
            case PyMarkup m: return m.Value.GetHashCode(StringComparison.Ordinal);
            case Undefined: return 0x1B873593;
            case PyList { IsTuple: true } t:
                var h = new HashCode();
                foreach (object? item in t.Items) h.Add(Hash(item is PyList { IsTuple: false } or PyDict ? throw TemplateError.Type($"unhashable type: '{PyTypes.TypeName(item)}'") : item));
                return h.ToHashCode();
            case PyList or PyDict: throw TemplateError.Type($"unhashable type: '{PyTypes.TypeName(v)}'");
            default: return RuntimeHelpers.GetHashCode(v);
        }
    }
}
