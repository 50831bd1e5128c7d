namespace PeftHost.Tokenizers.Jinja.Runtime;

/// <summary>
/// The value model: None is null, Python's bool/int/float/str are bool/long/double/string, lists and tuples
/// <see cref="PyList"/>, dicts <see cref="PyDict"/>; plus Jinja's Undefined, namespace, loop and callables.
/// This class gives their Python type names and truth values.
/// </summary>
internal static class PyTypes
{
    public static string TypeName(object? value) => value switch
    {
        null => "NoneType",
        bool => "bool",
        long => "int",
        double => "float",
        string => "str",
        PyMarkup => "Markup",
        PyList l => l.IsTuple ? "tuple" : "list",
        PyDict => "dict",
        Undefined => "Undefined",
        Namespace => "Namespace",
        LoopInfo => "LoopContext",
        PyIterator it => it.TypeName,
        PyDictView view => view.TypeName,
        PyCallable c => c.TypeName,
        _ => value.GetType().Name,
    };

    /// <summary>Python truthiness: None, False, 0, 0.0, "", empty list/tuple/dict and Undefined are false.</summary>
    public static bool Truthy(object? value) => value switch
    {
        null => false,
        bool b => b,
        long l => l != 0,
        double d => d != 0,
        string s => s.Length != 0,
        PyMarkup m => m.Value.Length != 0,
        PyList l => l.Count != 0,
        PyDict d => d.Count != 0,
        PyDictView view => view.Items.Count != 0,
        Undefined => false,
        _ => true,
    };

    /// <summary>bool, int or float (bool is an int in Python).</summary>
    public static bool IsNumber(object? value) => value is long or double or bool;

    /// <summary>bool or int.</summary>
    public static bool IsInteger(object? value) => value is long or bool;

    public static long AsLong(object? value) => value is bool b ? (b ? 1 : 0) : (long)value!;

    public static double AsDouble(object? value) => value switch
    {
        bool b => b ? 1 : 0,
        long l => l,
        _ => (double)value!,
    };

    /// <summary>An integer argument (a bool counts, as Python's index protocol allows).</summary>
    public static long ToIndex(object? value, string what) =>
        IsInteger(value) ? AsLong(value) : throw TemplateError.Type($"{what} must be an integer, not '{TypeName(value)}'");

    public static int ToInt32(object? value, string what)
    {
        long v = ToIndex(value, what);
        return v is >= int.MinValue and <= int.MaxValue ? (int)v : throw TemplateError.Overflow($"{what} {v} is too large");
    }
}
