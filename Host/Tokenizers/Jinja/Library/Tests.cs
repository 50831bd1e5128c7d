using PeftHost.Tokenizers.Jinja.Nodes;
using PeftHost.Tokenizers.Jinja.Runtime;

namespace PeftHost.Tokenizers.Jinja.Library;

/// <summary>Jinja 3.1's builtin tests (jinja2/tests.py): <c>is defined</c>, <c>is none</c>, <c>is string</c>, <c>is divisibleby 3</c>, ...</summary>
internal static class Tests
{
    public static Dictionary<string, TestFunction> Create()
    {
        var tests = new Dictionary<string, TestFunction>(StringComparer.Ordinal)
        {
            ["boolean"] = Is(v => v is bool),
            ["callable"] = Is(v => v is PyCallable or Undefined or LoopInfo),
            ["defined"] = Is(v => v is not Undefined),
            ["divisibleby"] = (c, v, a) => PyCompare.Equal(PyArithmetic.Modulo(v, a.Bind("divisibleby", 1, "num")[0]), 0L),
            ["escaped"] = Is(v => v is PyMarkup),
            ["even"] = (c, v, a) => Unary(a, "even", PyCompare.Equal(PyArithmetic.Modulo(v, 2L), 0L)),
            ["false"] = Is(v => v is false),
            ["filter"] = (c, v, a) => Unary(a, "filter", v is string s && c.Environment.Filters.ContainsKey(s)),
            ["float"] = Is(v => v is double),
            ["in"] = (c, v, a) => PyAccess.Contains(a.Bind("in", 1, "seq")[0], v),
            ["integer"] = Is(v => v is long),
            ["iterable"] = Is(v => PyAccess.IsIterable(v) || v is LoopInfo),
            ["lower"] = (c, v, a) => Unary(a, "lower", IsLower(PyText.Str(v))),
            ["mapping"] = Is(v => v is PyDict),
            ["none"] = Is(v => v is null),
            ["number"] = Is(PyTypes.IsNumber),
            ["odd"] = (c, v, a) => Unary(a, "odd", PyCompare.Equal(PyArithmetic.Modulo(v, 2L), 1L)),
            ["sameas"] = (c, v, a) => SameAs(v, a.Bind("sameas", 1, "other")[0]),
            ["sequence"] = Is(v => v is PyList or PyDict or string or Undefined),
            ["string"] = Is(v => v is string or PyMarkup),
            ["test"] = (c, v, a) => Unary(a, "test", v is string s && c.Environment.Tests.ContainsKey(s)),
            ["true"] = Is(v => v is true),
            ["undefined"] = Is(v => v is Undefined),
            ["upper"] = (c, v, a) => Unary(a, "upper", IsUpper(PyText.Str(v))),
        };
        foreach ((string[] names, CompareOperator op) in new[]
        {
            (new[] { "==", "eq", "equalto" }, CompareOperator.Equal),
            (["!=", "ne"], CompareOperator.NotEqual),
            ([">", "gt", "greaterthan"], CompareOperator.Greater),
            ([">=", "ge"], CompareOperator.GreaterOrEqual),
            (["<", "lt", "lessthan"], CompareOperator.Less),
            (["<=", "le"], CompareOperator.LessOrEqual),
        })
        {
            foreach (string name in names) tests[name] = (c, v, a) => CompareExpr.Holds(op, v, a.Bind(name, 1, "other")[0]);
        }
        return tests;
    }

    private static TestFunction Is(Func<object?, bool> predicate) => (c, v, a) =>
    {
        a.Bind("test", 0);
        return predicate(v);
    };

    private static bool Unary(CallArguments a, string name, bool result)
    {
        a.Bind(name, 0);
        return result;
    }

    // Python's `is`: None and booleans are singletons; other values by identity.
    private static bool SameAs(object? a, object? b) => a switch
    {
        null => b is null,
        bool x => b is bool y && x == y,
        _ => ReferenceEquals(a, b),
    };

    private static bool IsLower(string s) => s.Any(char.IsLower) && !s.Any(char.IsUpper);

    private static bool IsUpper(string s) => s.Any(char.IsUpper) && !s.Any(char.IsLower);
}
