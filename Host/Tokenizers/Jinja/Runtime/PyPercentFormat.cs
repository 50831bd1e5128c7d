using System.Globalization;
using System.Text;

namespace PeftHost.Tokenizers.Jinja.Runtime;

/// <summary>
/// Python's printf-style <c>str % values</c> (also the <c>format</c> filter): %s %r %d %i %f %F %e %E %g %x %X %o %c %%,
/// with flags, width, precision and <c>%(name)s</c> keys.
/// </summary>
internal static class PyPercentFormat
{
    /// <summary>Formats; with <paramref name="escape"/> (Markup % values) %s and %r text is HTML-escaped, as markupsafe does.</summary>
    public static string Format(string format, object? values, bool escape = false)
    {
        if (values is Undefined && format.Contains("%(", StringComparison.Ordinal)) throw ((Undefined)values).Fail();
        IReadOnlyList<object?> args = values is PyList { IsTuple: true } t ? t.Items : [values];
        var mapping = values as PyDict;
        // Python takes anything subscriptable but a tuple or str as a mapping: then unused arguments are no error.
        bool mappingLike = values is PyDict or Undefined or PyList { IsTuple: false };
        var sb = new StringBuilder(format.Length + 16);
        int next = 0;
        for (int i = 0; i < format.Length; i++)
        {
            char c = format[i];
            if (c != '%')
            {
                sb.Append(c);
                continue;
            }
            if (++i >= format.Length) throw TemplateError.Value("incomplete format");
            object? arg = null;
            bool haveArg = false;
            if (format[i] == '(')
            {
                int close = format.IndexOf(')', i);
                if (close < 0) throw TemplateError.Value("incomplete format key");
                if (mapping is null) throw TemplateError.Type(values is PyList { IsTuple: false } ? "list indices must be integers or slices, not str" : "format requires a mapping");
                string key = format[(i + 1)..close];
                if (!mapping.TryGet(key, out arg)) throw new TemplateError(TemplateErrorKind.Value, $"KeyError: {PyText.Repr(key)}");
                haveArg = true;
                i = close + 1;
            }
            string flags = "";
            while (i < format.Length && "-+ #0".Contains(format[i], StringComparison.Ordinal)) flags += format[i++];
            int width = ReadNumber(format, ref i, args, ref next);
            int precision = -1;
            if (i < format.Length && format[i] == '.')
            {
                i++;
                precision = Math.Max(0, ReadNumber(format, ref i, args, ref next));
            }
            if (i >= format.Length) throw TemplateError.Value("incomplete format");
            char conversion = format[i];
            if (conversion == '%')
            {
                sb.Append('%');
                continue;
            }
            if (!haveArg)
            {
                if (next >= args.Count) throw TemplateError.Type("not enough arguments for format string");
                arg = args[next++];
            }
            string converted = Convert(conversion, arg, flags, precision);
            if (escape && conversion is 's' or 'r' or 'a' && !(conversion == 's' && arg is PyMarkup)) converted = PyMarkup.Html(converted);
            sb.Append(Pad(converted, width, flags));
        }
        if (!mappingLike && next < args.Count) throw TemplateError.Type("not all arguments converted during string formatting");
        return sb.ToString();
    }

    private static int ReadNumber(string format, ref int i, IReadOnlyList<object?> args, ref int next)
    {
        if (i < format.Length && format[i] == '*')
        {
            i++;
            if (next >= args.Count) throw TemplateError.Type("not enough arguments for format string");
            return PyTypes.ToInt32(args[next++], "* width");
        }
        int start = i;
        while (i < format.Length && char.IsAsciiDigit(format[i])) i++;
        return i > start ? int.Parse(format.AsSpan(start, i - start), CultureInfo.InvariantCulture) : 0;
    }

    private static string Convert(char conversion, object? arg, string flags, int precision)
    {
        switch (conversion)
        {
            case 's':
                string s = PyText.Str(arg);
                return precision >= 0 && precision < s.Length ? s[..precision] : s;
            case 'r':
            case 'a':
                string r = PyText.Repr(arg);
                return precision >= 0 && precision < r.Length ? r[..precision] : r;
            case 'd':
            case 'i':
            case 'u':
                return Sign(IntegerOf(arg, conversion).ToString(CultureInfo.InvariantCulture), flags);
            case 'x':
            case 'X':
            case 'o':
                long v = IntegerOf(arg, conversion);
                string digits = conversion == 'o' ? System.Convert.ToString(Math.Abs(v), 8) : Math.Abs(v).ToString(conversion == 'x' ? "x" : "X", CultureInfo.InvariantCulture);
                if (flags.Contains('#', StringComparison.Ordinal)) digits = (conversion == 'o' ? "0o" : conversion == 'x' ? "0x" : "0X") + digits;
                return Sign(v < 0 ? "-" + digits : digits, flags);
            case 'f':
            case 'F':
            case 'e':
            case 'E':
            case 'g':
            case 'G':
                return Sign(FloatFormat(FloatOf(arg, conversion), conversion, precision < 0 ? 6 : precision, flags.Contains('#', StringComparison.Ordinal)), flags);
            case 'c':
                if (PyMarkup.TryText(arg, out string ch) && CodePoints.Length(ch) == 1) return ch;
                return char.ConvertFromUtf32(PyTypes.ToInt32(arg, "%c"));
            default:
                throw TemplateError.Value($"unsupported format character {PyText.Repr(conversion.ToString())}");
        }
    }

    private static long IntegerOf(object? arg, char conversion) => arg switch
    {
        bool or long => PyTypes.AsLong(arg),
        double d when conversion is 'd' or 'i' or 'u' => (long)Math.Truncate(d),
        _ => throw TemplateError.Type($"%{conversion} format: a real number is required, not {PyTypes.TypeName(arg)}"),
    };

    private static double FloatOf(object? arg, char conversion) =>
        PyTypes.IsNumber(arg) ? PyTypes.AsDouble(arg) : throw TemplateError.Type($"must be real number, not {PyTypes.TypeName(arg)}");

    /// <summary>C's %f, %e and %g, as Python formats floats.</summary>
    public static string FloatFormat(double d, char conversion, int precision, bool alternate)
    {
        if (double.IsNaN(d)) return char.IsUpper(conversion) ? "NAN" : "nan";
        if (double.IsInfinity(d)) return (d < 0 ? "-" : "") + (char.IsUpper(conversion) ? "INF" : "inf");
        switch (conversion)
        {
            case 'f':
            case 'F':
                return d.ToString("F" + precision.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
            case 'e':
            case 'E':
                return Exponent(d, precision, conversion);
            default:
                int p = precision == 0 ? 1 : precision;
                if (d == 0) return alternate ? "0." + new string('0', p - 1) : "0";
                int exp = (int)Math.Floor(Math.Log10(Math.Abs(double.Parse(Exponent(d, p - 1, 'e'), CultureInfo.InvariantCulture))));
                string text = exp < -4 || exp >= p
                    ? Exponent(d, p - 1, conversion == 'G' ? 'E' : 'e')
                    : d.ToString("F" + Math.Max(0, p - 1 - exp).ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
                if (!alternate && text.Contains('.', StringComparison.Ordinal))
                {
                    int ePos = text.IndexOfAny(['e', 'E']);
                    string mantissa = ePos < 0 ? text : text[..ePos];
                    mantissa = mantissa.TrimEnd('0').TrimEnd('.');
                    text = ePos < 0 ? mantissa : mantissa + text[ePos..];
                }
                return text;
        }
    }

    private static string Exponent(double d, int precision, char e)
    {
        string s = d.ToString((e == 'E' ? "E" : "e") + precision.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
        // .NET writes e+006; C and Python write at least two exponent digits: e+06.
        int at = s.IndexOf(e);
        string digits = s[(at + 2)..].TrimStart('0');
        if (digits.Length < 2) digits = digits.PadLeft(2, '0');
        return s[..(at + 2)] + digits;
    }

    private static string Sign(string number, string flags)
    {
        if (number.StartsWith('-')) return number;
        if (flags.Contains('+', StringComparison.Ordinal)) return "+" + number;
        if (flags.Contains(' ', StringComparison.Ordinal)) return " " + number;
        return number;
    }

    private static string Pad(string text, int width, string flags)
    {
        int length = CodePoints.Length(text);
        if (width <= length) return text;
        if (flags.Contains('-', StringComparison.Ordinal)) return text + new string(' ', width - length);
        if (flags.Contains('0', StringComparison.Ordinal) && text.Length > 0 && (char.IsAsciiDigit(text[^1]) || text[^1] == '.'))
        {
            int signLength = text[0] is '-' or '+' or ' ' ? 1 : 0;
            return text[..signLength] + new string('0', width - length) + text[signLength..];
        }
        return new string(' ', width - length) + text;
    }
}
