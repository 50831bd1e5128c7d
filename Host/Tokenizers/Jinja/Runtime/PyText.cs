using System.Globalization;
using System.Text;

namespace PeftHost.Tokenizers.Jinja.Runtime;

/// <summary>
/// Python's str() and repr() of template values: what <c>{{ value }}</c> prints (str) and how values appear
/// inside printed lists and dicts (repr), with CPython's float formatting and string quoting.
/// </summary>
internal static class PyText
{
    private const int MaxDepth = 100;

    public static string Str(object? value) => value switch
    {
        string s => s,
        PyMarkup m => m.Value,
        Undefined => "",
        _ => Repr(value),
    };

    public static string Repr(object? value)
    {
        if (value is string s) return StringRepr(s);
        var sb = new StringBuilder();
        AppendRepr(sb, value, 0);
        return sb.ToString();
    }

    private static void AppendRepr(StringBuilder sb, object? value, int depth)
    {
        if (depth > MaxDepth) throw new TemplateError(TemplateErrorKind.Recursion, "maximum recursion depth exceeded while getting the repr of an object");
        switch (value)
        {
            case null: sb.Append("None"); break;
            case bool b: sb.Append(b ? "True" : "False"); break;
            case long l: sb.Append(l.ToString(CultureInfo.InvariantCulture)); break;
            case double d: sb.Append(FloatRepr(d)); break;
            case string s: sb.Append(StringRepr(s)); break;
            case PyMarkup m: sb.Append("Markup(").Append(StringRepr(m.Value)).Append(')'); break;
            case Undefined: sb.Append("Undefined"); break;
            case PyList list:
                sb.Append(list.IsTuple ? '(' : '[');
                for (int i = 0; i < list.Count; i++)
                {
                    if (i > 0) sb.Append(", ");
                    AppendRepr(sb, list[i], depth + 1);
                }
                if (list.IsTuple && list.Count == 1) sb.Append(',');
                sb.Append(list.IsTuple ? ')' : ']');
                break;
            case PyDict dict:
                sb.Append('{');
                bool first = true;
                foreach ((object? k, object? v) in dict.Items)
                {
                    if (!first) sb.Append(", ");
                    first = false;
                    AppendRepr(sb, k, depth + 1);
                    sb.Append(": ");
                    AppendRepr(sb, v, depth + 1);
                }
                sb.Append('}');
                break;
            case Namespace ns:
                sb.Append("<Namespace {");
                bool firstAttr = true;
                foreach ((string k, object? v) in ns.Attributes)
                {
                    if (!firstAttr) sb.Append(", ");
                    firstAttr = false;
                    sb.Append(StringRepr(k)).Append(": ");
                    AppendRepr(sb, v, depth + 1);
                }
                sb.Append("}>");
                break;
            case PyDictView view:
                sb.Append(view.TypeName).Append("([");
                for (int i = 0; i < view.Items.Count; i++)
                {
                    if (i > 0) sb.Append(", ");
                    AppendRepr(sb, view.Items[i], depth + 1);
                }
                sb.Append("])");
                break;
            case LoopInfo loop: sb.Append("<LoopContext ").Append(loop.Index0 + 1).Append('/').Append(loop.Length).Append('>'); break;
            case PyIterator it: sb.Append('<').Append(it.TypeName).Append(" object>"); break;
            case PyCallable c: sb.Append("<built-in function ").Append(c.Name).Append('>'); break;
            default: sb.Append(value.ToString()); break;
        }
    }

    /// <summary>CPython's repr(float): the shortest digits that round-trip, exponent form below 1e-4 and from 1e16.</summary>
    public static string FloatRepr(double d)
    {
        if (double.IsNaN(d)) return "nan";
        if (double.IsPositiveInfinity(d)) return "inf";
        if (double.IsNegativeInfinity(d)) return "-inf";
        if (d == 0) return double.IsNegative(d) ? "-0.0" : "0.0";
        // .NET's "R" gives the same shortest round-trip digits; only the layout differs.
        string r = d.ToString("R", CultureInfo.InvariantCulture);
        bool negative = r[0] == '-';
        if (negative) r = r[1..];
        int exponent = 0;
        int e = r.IndexOfAny(['E', 'e']);
        if (e >= 0)
        {
            exponent = int.Parse(r.AsSpan(e + 1), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
            r = r[..e];
        }
        int dot = r.IndexOf('.', StringComparison.Ordinal);
        string digits = dot < 0 ? r : r.Remove(dot, 1);
        int pointAt = (dot < 0 ? r.Length : dot) + exponent;
        int lead = 0;
        while (lead < digits.Length - 1 && digits[lead] == '0') lead++;
        digits = digits[lead..];
        pointAt -= lead;
        digits = digits.TrimEnd('0');
        if (digits.Length == 0) digits = "0";

        var sb = new StringBuilder(negative ? "-" : "");
        if (pointAt <= -4 || pointAt > 16)
        {
            sb.Append(digits[0]);
            if (digits.Length > 1) sb.Append('.').Append(digits, 1, digits.Length - 1);
            int exp = pointAt - 1;
            sb.Append(exp < 0 ? "e-" : "e+").Append(Math.Abs(exp).ToString("00", CultureInfo.InvariantCulture));
        }
        else if (pointAt <= 0)
        {
            sb.Append("0.").Append('0', -pointAt).Append(digits);
        }
        else if (pointAt >= digits.Length)
        {
            sb.Append(digits).Append('0', pointAt - digits.Length).Append(".0");
        }
        else
        {
            sb.Append(digits, 0, pointAt).Append('.').Append(digits, pointAt, digits.Length - pointAt);
        }
        return sb.ToString();
    }

    /// <summary>CPython's repr(str): single quotes unless the text has ' and no ", escapes for unprintable characters.</summary>
    public static string StringRepr(string s)
    {
        char quote = s.Contains('\'', StringComparison.Ordinal) && !s.Contains('"', StringComparison.Ordinal) ? '"' : '\'';
        var sb = new StringBuilder(s.Length + 2);
        sb.Append(quote);
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            if (c == quote || c == '\\') sb.Append('\\').Append(c);
            else if (c == '\t') sb.Append("\\t");
            else if (c == '\n') sb.Append("\\n");
            else if (c == '\r') sb.Append("\\r");
            else if (c < ' ' || c == '\x7f') sb.Append("\\x").Append(((int)c).ToString("x2", CultureInfo.InvariantCulture));
            else if (c < '\x7f') sb.Append(c);
            else if (char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
            {
                int cp = char.ConvertToUtf32(c, s[i + 1]);
                if (IsPrintable(CharUnicodeInfo.GetUnicodeCategory(cp))) sb.Append(c).Append(s[i + 1]);
                else sb.Append("\\U").Append(cp.ToString("x8", CultureInfo.InvariantCulture));
                i++;
            }
            else if (!char.IsSurrogate(c) && IsPrintable(CharUnicodeInfo.GetUnicodeCategory(c))) sb.Append(c);
            else if (c < '\u0100') sb.Append("\\x").Append(((int)c).ToString("x2", CultureInfo.InvariantCulture));
            else sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
        }
        return sb.Append(quote).ToString();
    }

    // str.isprintable: everything but control, format, surrogate, private use, unassigned and separators other than space.
    private static bool IsPrintable(UnicodeCategory category) => category is not (UnicodeCategory.Control or UnicodeCategory.Format
        or UnicodeCategory.Surrogate or UnicodeCategory.PrivateUse or UnicodeCategory.OtherNotAssigned
        or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator or UnicodeCategory.SpaceSeparator);
}
