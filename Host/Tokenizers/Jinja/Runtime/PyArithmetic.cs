using System.Text;

namespace PeftHost.Tokenizers.Jinja.Runtime;

/// <summary>Python's arithmetic operators on template values (+ - * / // % ** and unary - +), with Python's errors.</summary>
internal static class PyArithmetic
{
    /// <summary>Strings and lists built by * stop here: a template cannot make the renderer allocate without bound.</summary>
    public const int MaxRepeatedLength = 1 << 26;

    public static object? Add(object? a, object? b)
    {
        FailIfUndefined(a, b);
        if (a is PyMarkup ma) return PyMarkup.Add(ma, b, markupOnLeft: true);
        if (b is PyMarkup mb && a is string) return PyMarkup.Add(mb, a, markupOnLeft: false);
        if (PyTypes.IsNumber(a) && PyTypes.IsNumber(b))
        {
            if (PyTypes.IsInteger(a) && PyTypes.IsInteger(b)) return CheckedAdd(PyTypes.AsLong(a), PyTypes.AsLong(b));
            return PyTypes.AsDouble(a) + PyTypes.AsDouble(b);
        }
        switch (a)
        {
            case string sa:
                return b is string sb ? string.Concat(sa, sb) : throw TemplateError.Type($"can only concatenate str (not \"{PyTypes.TypeName(b)}\") to str");
            case PyList la:
                if (b is PyList lb && lb.IsTuple == la.IsTuple) return new PyList([.. la.Items, .. lb.Items], la.IsTuple);
                throw TemplateError.Type($"can only concatenate {PyTypes.TypeName(a)} (not \"{PyTypes.TypeName(b)}\") to {PyTypes.TypeName(a)}");
        }
        throw Unsupported("+", a, b);
    }

    public static object? Subtract(object? a, object? b)
    {
        FailIfUndefined(a, b);
        if (!PyTypes.IsNumber(a) || !PyTypes.IsNumber(b)) throw Unsupported("-", a, b);
        if (PyTypes.IsInteger(a) && PyTypes.IsInteger(b)) return CheckedAdd(PyTypes.AsLong(a), -(Int128)PyTypes.AsLong(b));
        return PyTypes.AsDouble(a) - PyTypes.AsDouble(b);
    }

    public static object? Multiply(object? a, object? b)
    {
        FailIfUndefined(a, b);
        if (a is PyMarkup ma && PyTypes.IsInteger(b)) return new PyMarkup((string)Repeat(ma.Value, PyTypes.AsLong(b)));
        if (b is PyMarkup mb && PyTypes.IsInteger(a)) return new PyMarkup((string)Repeat(mb.Value, PyTypes.AsLong(a)));
        if (PyTypes.IsNumber(a) && PyTypes.IsNumber(b))
        {
            if (PyTypes.IsInteger(a) && PyTypes.IsInteger(b)) return CheckedMultiply(PyTypes.AsLong(a), PyTypes.AsLong(b));
            return PyTypes.AsDouble(a) * PyTypes.AsDouble(b);
        }
        if (PyTypes.IsInteger(b) && a is string or PyList) return Repeat(a, PyTypes.AsLong(b));
        if (PyTypes.IsInteger(a) && b is string or PyList) return Repeat(b, PyTypes.AsLong(a));
        if (a is string or PyList && PyTypes.IsNumber(b) || b is string or PyList && PyTypes.IsNumber(a))
            throw TemplateError.Type($"can't multiply sequence by non-int of type '{PyTypes.TypeName(a is string or PyList ? b : a)}'");
        throw Unsupported("*", a, b);
    }

    public static object? Divide(object? a, object? b)
    {
        FailIfUndefined(a, b);
        if (!PyTypes.IsNumber(a) || !PyTypes.IsNumber(b)) throw Unsupported("/", a, b);
        double divisor = PyTypes.AsDouble(b);
        if (divisor == 0) throw new TemplateError(TemplateErrorKind.ZeroDivision, PyTypes.IsInteger(a) && PyTypes.IsInteger(b) ? "division by zero" : "float division by zero");
        return PyTypes.AsDouble(a) / divisor;
    }

    public static object? FloorDivide(object? a, object? b)
    {
        FailIfUndefined(a, b);
        if (!PyTypes.IsNumber(a) || !PyTypes.IsNumber(b)) throw Unsupported("//", a, b);
        if (PyTypes.IsInteger(a) && PyTypes.IsInteger(b))
        {
            long x = PyTypes.AsLong(a), y = PyTypes.AsLong(b);
            if (y == 0) throw new TemplateError(TemplateErrorKind.ZeroDivision, "integer division or modulo by zero");
            if (x == long.MinValue && y == -1) throw TemplateError.IntegerOverflow();
            long q = x / y;
            return (x % y != 0 && (x < 0) != (y < 0)) ? q - 1 : q;
        }
        double d = PyTypes.AsDouble(b);
        if (d == 0) throw new TemplateError(TemplateErrorKind.ZeroDivision, "float floor division by zero");
        return Math.Floor(PyTypes.AsDouble(a) / d);
    }

    public static object? Modulo(object? a, object? b)
    {
        if (a is string format) return PyPercentFormat.Format(format, b);
        if (a is PyMarkup markup) return new PyMarkup(PyPercentFormat.Format(markup.Value, b, escape: true));
        FailIfUndefined(a, b);
        if (!PyTypes.IsNumber(a) || !PyTypes.IsNumber(b)) throw Unsupported("%", a, b);
        if (PyTypes.IsInteger(a) && PyTypes.IsInteger(b))
        {
            long x = PyTypes.AsLong(a), y = PyTypes.AsLong(b);
            if (y == 0) throw new TemplateError(TemplateErrorKind.ZeroDivision, "integer modulo by zero");
            if (y == -1) return 0L;
            long r = x % y;
            return r != 0 && (r < 0) != (y < 0) ? r + y : r;
        }
        double dx = PyTypes.AsDouble(a), dy = PyTypes.AsDouble(b);
        if (dy == 0) throw new TemplateError(TemplateErrorKind.ZeroDivision, "float modulo");
        double m = dx % dy;
        if (m == 0) return dy < 0 ? -0.0 : 0.0;
        return (m < 0) != (dy < 0) ? m + dy : m;
    }

    public static object? Power(object? a, object? b)
    {
        FailIfUndefined(a, b);
        if (!PyTypes.IsNumber(a) || !PyTypes.IsNumber(b)) throw Unsupported("** or pow()", a, b);
        if (PyTypes.IsInteger(a) && PyTypes.IsInteger(b) && PyTypes.AsLong(b) >= 0)
        {
            long baseValue = PyTypes.AsLong(a), result = 1;
            for (long e = PyTypes.AsLong(b); e > 0; e >>= 1)
            {
                if ((e & 1) == 1) result = CheckedMultiply(result, baseValue);
                if (e > 1) baseValue = CheckedMultiply(baseValue, baseValue);
            }
            return result;
        }
        double dx = PyTypes.AsDouble(a), dy = PyTypes.AsDouble(b);
        if (dx == 0 && dy < 0) throw new TemplateError(TemplateErrorKind.ZeroDivision, "0.0 cannot be raised to a negative power");
        if (dx < 0 && dy != Math.Floor(dy)) throw TemplateError.Value("a negative number to a fractional power is complex (complex numbers are not supported)");
        return Math.Pow(dx, dy);
    }

    public static object? Negate(object? a)
    {
        if (a is Undefined u) throw u.Fail();
        if (PyTypes.IsInteger(a))
        {
            long v = PyTypes.AsLong(a);
            return v == long.MinValue ? throw TemplateError.IntegerOverflow() : -v;
        }
        if (a is double d) return -d;
        throw TemplateError.Type($"bad operand type for unary -: '{PyTypes.TypeName(a)}'");
    }

    public static object? Plus(object? a)
    {
        if (a is Undefined u) throw u.Fail();
        if (PyTypes.IsInteger(a)) return PyTypes.AsLong(a);
        if (a is double) return a;
        throw TemplateError.Type($"bad operand type for unary +: '{PyTypes.TypeName(a)}'");
    }

    private static object Repeat(object? sequence, long times)
    {
        if (times <= 0) return sequence is string ? "" : new PyList([], ((PyList)sequence!).IsTuple);
        if (sequence is string s)
        {
            if (s.Length * times > MaxRepeatedLength) throw TemplateError.Overflow($"repeated string of {s.Length * times} characters is too large");
            var sb = new StringBuilder(s.Length * (int)times);
            for (long i = 0; i < times; i++) sb.Append(s);
            return sb.ToString();
        }
        var list = (PyList)sequence!;
        if (list.Count * times > MaxRepeatedLength) throw TemplateError.Overflow($"repeated {PyTypes.TypeName(list)} of {list.Count * times} items is too large");
        var items = new List<object?>(list.Count * (int)times);
        for (long i = 0; i < times; i++) items.AddRange(list.Items);
        return new PyList(items, list.IsTuple);
    }

    private static long CheckedAdd(Int128 x, Int128 y) => Narrow(x + y);

    private static long CheckedMultiply(long x, long y) => Narrow((Int128)x * y);

    private static long Narrow(Int128 v) => v >= long.MinValue && v <= long.MaxValue ? (long)v : throw TemplateError.IntegerOverflow();

    private static void FailIfUndefined(object? a, object? b)
    {
        if (a is Undefined ua) throw ua.Fail();
        if (b is Undefined ub) throw ub.Fail();
    }

    private static TemplateError Unsupported(string op, object? a, object? b) =>
        TemplateError.Type($"unsupported operand type(s) for {op}: '{PyTypes.TypeName(a)}' and '{PyTypes.TypeName(b)}'");
}
