using System.Globalization;
using System.Text;

namespace PeftHost.Tokenizers.Jinja.Runtime;

/// <summary>
/// The methods of Python's str that templates call (<c>content.strip()</c>, <c>.split()</c>, <c>.startswith()</c>, ...),
/// bound to their string, with Python's whitespace, splitting and case rules.
/// </summary>
internal static class PyStringMethods
{
    public static PyCallable? Method(string s, string name) => name switch
    {
        "strip" => Bind(name, (c, a) => Strip(s, Chars(a, name), true, true)),
        "lstrip" => Bind(name, (c, a) => Strip(s, Chars(a, name), true, false)),
        "rstrip" => Bind(name, (c, a) => Strip(s, Chars(a, name), false, true)),
        "split" => Bind(name, (c, a) => Split(s, a, name, fromRight: false)),
        "rsplit" => Bind(name, (c, a) => Split(s, a, name, fromRight: true)),
        "splitlines" => Bind(name, (c, a) => SplitLines(s, PyTypes.Truthy(CallArguments.Or<object?>(a.Bind(name, 0, "keepends")[0], false)))),
        "startswith" => Bind(name, (c, a) => StartsOrEnds(s, a, name, start: true)),
        "endswith" => Bind(name, (c, a) => StartsOrEnds(s, a, name, start: false)),
        "upper" => Bind(name, (c, a) => NoArgs(a, name, Upper(s))),
        "lower" => Bind(name, (c, a) => NoArgs(a, name, Lower(s))),
        "casefold" => Bind(name, (c, a) => NoArgs(a, name, Lower(s))),
        "title" => Bind(name, (c, a) => NoArgs(a, name, Title(s))),
        "capitalize" => Bind(name, (c, a) => NoArgs(a, name, Capitalize(s))),
        "swapcase" => Bind(name, (c, a) => NoArgs(a, name, SwapCase(s))),
        "replace" => Bind(name, (c, a) => Replace(s, a)),
        "find" => Bind(name, (c, a) => Find(s, a, name, fromRight: false, raise: false)),
        "rfind" => Bind(name, (c, a) => Find(s, a, name, fromRight: true, raise: false)),
        "index" => Bind(name, (c, a) => Find(s, a, name, fromRight: false, raise: true)),
        "rindex" => Bind(name, (c, a) => Find(s, a, name, fromRight: true, raise: true)),
        "count" => Bind(name, (c, a) => Count(s, Str(a.Bind(name, 1, "sub")[0], name))),
        "join" => Bind(name, (c, a) => Join(s, a.Bind(name, 1, "iterable")[0])),
        "isdigit" or "isdecimal" or "isnumeric" => Bind(name, (c, a) => NoArgs(a, name, s.Length > 0 && s.All(char.IsDigit))),
        "isalpha" => Bind(name, (c, a) => NoArgs(a, name, s.Length > 0 && s.All(char.IsLetter))),
        "isalnum" => Bind(name, (c, a) => NoArgs(a, name, s.Length > 0 && s.All(char.IsLetterOrDigit))),
        "isspace" => Bind(name, (c, a) => NoArgs(a, name, s.Length > 0 && s.All(IsSpace))),
        "isupper" => Bind(name, (c, a) => NoArgs(a, name, s.Any(char.IsUpper) && !s.Any(char.IsLower))),
        "islower" => Bind(name, (c, a) => NoArgs(a, name, s.Any(char.IsLower) && !s.Any(char.IsUpper))),
        "center" => Bind(name, (c, a) => Pad(s, a, name, 'c')),
        "ljust" => Bind(name, (c, a) => Pad(s, a, name, 'l')),
        "rjust" => Bind(name, (c, a) => Pad(s, a, name, 'r')),
        "zfill" => Bind(name, (c, a) => ZFill(s, PyTypes.ToInt32(a.Bind(name, 1, "width")[0], "width"))),
        "partition" => Bind(name, (c, a) => Partition(s, Str(a.Bind(name, 1, "sep")[0], name), fromRight: false)),
        "rpartition" => Bind(name, (c, a) => Partition(s, Str(a.Bind(name, 1, "sep")[0], name), fromRight: true)),
        "removeprefix" => Bind(name, (c, a) => Str(a.Bind(name, 1, "prefix")[0], name) is var p && s.StartsWith(p, StringComparison.Ordinal) ? s[p.Length..] : s),
        "removesuffix" => Bind(name, (c, a) => Str(a.Bind(name, 1, "suffix")[0], name) is var x && x.Length > 0 && s.EndsWith(x, StringComparison.Ordinal) ? s[..^x.Length] : s),
        "format" or "format_map" => Bind(name, (c, a) => throw TemplateError.Value("str.format is not supported by this template interpreter")),
        _ => null,
    };

    // SpecialCasing.txt's unconditional upper-case expansions (Python applies them; .NET's invariant mapping does not).
    private static readonly Dictionary<char, string> UpperExpansions = new()
    {
        ['ß'] = "SS", ['ŉ'] = "ʼN", ['ǰ'] = "J̌", ['ΐ'] = "Ϊ́", ['ΰ'] = "Ϋ́", ['և'] = "ԵՒ", ['ẖ'] = "H̱", ['ẗ'] = "T̈",
        ['ẘ'] = "W̊", ['ẙ'] = "Y̊", ['ẚ'] = "Aʾ", ['ﬀ'] = "FF", ['ﬁ'] = "FI", ['ﬂ'] = "FL", ['ﬃ'] = "FFI", ['ﬄ'] = "FFL",
        ['ﬅ'] = "ST", ['ﬆ'] = "ST", ['ﬓ'] = "ՄՆ", ['ﬔ'] = "ՄԵ", ['ﬕ'] = "ՄԻ", ['ﬖ'] = "ՎՆ", ['ﬗ'] = "ՄԽ",
    };

    /// <summary>Python's str.upper (with the expansions such as ß to SS).</summary>
    public static string Upper(string s)
    {
        string upper = s.ToUpperInvariant();
        if (upper.AsSpan().IndexOfAny(UpperExpansionKeys) < 0) return upper;
        var sb = new StringBuilder(upper.Length + 4);
        foreach (char c in upper) sb.Append(UpperExpansions.TryGetValue(c, out string? e) ? e : c.ToString());
        return sb.ToString();
    }

    private static readonly string UpperExpansionKeys = string.Concat(UpperExpansions.Keys);

    /// <summary>Python's str.lower (İ becomes i with a combining dot, as in SpecialCasing.txt).</summary>
    public static string Lower(string s)
    {
        if (!s.Contains('\u0130', StringComparison.Ordinal)) return s.ToLowerInvariant();
        return string.Join("i\u0307", s.Split('\u0130').Select(part => part.ToLowerInvariant()));
    }

    /// <summary>Python's str.isspace for one character (.NET's white space plus the separators U+001C..U+001F).</summary>
    public static bool IsSpace(char c) => char.IsWhiteSpace(c) || c is >= '\x1c' and <= '\x1f';

    public static string Strip(string s, string? chars, bool left, bool right)
    {
        Func<char, bool> strip = chars is null ? IsSpace : c => chars.Contains(c, StringComparison.Ordinal);
        int start = 0, end = s.Length;
        if (left)
        {
            while (start < end && strip(s[start])) start++;
        }
        if (right)
        {
            while (end > start && strip(s[end - 1])) end--;
        }
        return start == 0 && end == s.Length ? s : s[start..end];
    }

    /// <summary>Python's str.title: a letter after a cased letter is lower-cased, any other letter title-cased.</summary>
    public static string Title(string s)
    {
        var sb = new StringBuilder(s.Length);
        bool previousCased = false;
        foreach (char c in s)
        {
            sb.Append(previousCased ? char.ToLowerInvariant(c) : char.ToUpperInvariant(c));
            previousCased = char.IsUpper(c) || char.IsLower(c) || CharUnicodeInfo.GetUnicodeCategory(c) == UnicodeCategory.TitlecaseLetter;
        }
        return sb.ToString();
    }

    public static string Capitalize(string s) =>
        s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..].ToLowerInvariant();

    private static string SwapCase(string s)
    {
        var sb = new StringBuilder(s.Length);
        foreach (char c in s) sb.Append(char.IsUpper(c) ? char.ToLowerInvariant(c) : char.IsLower(c) ? char.ToUpperInvariant(c) : c);
        return sb.ToString();
    }

    private static PyCallable Bind(string name, PyFunction f) => new(name, f, "builtin_function_or_method");

    private static object NoArgs(CallArguments a, string name, object result)
    {
        a.Bind(name, 0);
        return result;
    }

    private static string? Chars(CallArguments a, string name)
    {
        object? chars = a.Bind(name, 0, "chars")[0];
        return CallArguments.IsMissing(chars) || chars is null ? null : Str(chars, name);
    }

    private static string Str(object? value, string name) =>
        PyMarkup.TryText(value, out string s) ? s : throw TemplateError.Type($"{name}() argument must be str, not {PyTypes.TypeName(value)}");

    private static PyList Split(string s, CallArguments a, string name, bool fromRight)
    {
        object?[] p = a.Bind(name, 0, "sep", "maxsplit");
        string? sep = CallArguments.IsMissing(p[0]) || p[0] is null ? null : Str(p[0], name);
        long max = CallArguments.IsMissing(p[1]) ? -1 : PyTypes.ToIndex(p[1], "maxsplit");
        var parts = new List<object?>();
        if (sep is null)
        {
            // Runs of whitespace separate; leading and trailing whitespace make no empty parts.
            var words = new List<(int Start, int End)>();
            int i = 0;
            while (i < s.Length)
            {
                while (i < s.Length && IsSpace(s[i])) i++;
                if (i >= s.Length) break;
                int start = i;
                while (i < s.Length && !IsSpace(s[i])) i++;
                words.Add((start, i));
            }
            if (max < 0 || words.Count <= max + 1)
            {
                foreach ((int st, int en) in words) parts.Add(s[st..en]);
            }
            else if (!fromRight)
            {
                for (int w = 0; w < max; w++) parts.Add(s[words[w].Start..words[w].End]);
                parts.Add(s[words[(int)max].Start..]); // the rest keeps its trailing whitespace, as CPython does
            }
            else
            {
                int keep = words.Count - (int)max;
                parts.Add(s[..words[keep - 1].End]);
                for (int w = keep; w < words.Count; w++) parts.Add(s[words[w].Start..words[w].End]);
            }
            return new PyList(parts);
        }
        if (sep.Length == 0) throw TemplateError.Value("empty separator");
        if (!fromRight)
        {
            int from = 0;
            while (max < 0 || parts.Count < max)
            {
                int at = s.IndexOf(sep, from, StringComparison.Ordinal);
                if (at < 0) break;
                parts.Add(s[from..at]);
                from = at + sep.Length;
            }
            parts.Add(s[from..]);
            return new PyList(parts);
        }
        var reversed = new List<object?>();
        int end = s.Length;
        while (max < 0 || reversed.Count < max)
        {
            int at = end - sep.Length < 0 ? -1 : s.LastIndexOf(sep, end - 1, end, StringComparison.Ordinal);
            if (at < 0 || at + sep.Length > end) break;
            reversed.Add(s[(at + sep.Length)..end]);
            end = at;
        }
        reversed.Add(s[..end]);
        reversed.Reverse();
        return new PyList(reversed);
    }

    private static PyList SplitLines(string s, bool keepEnds)
    {
        var lines = new List<object?>();
        int start = 0;
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            if (c is not ('\n' or '\r' or '\v' or '\f' or '\x1c' or '\x1d' or '\x1e' or '\x85' or '\u2028' or '\u2029')) continue;
            int breakLength = c == '\r' && i + 1 < s.Length && s[i + 1] == '\n' ? 2 : 1;
            lines.Add(keepEnds ? s[start..(i + breakLength)] : s[start..i]);
            i += breakLength - 1;
            start = i + 1;
        }
        if (start < s.Length) lines.Add(s[start..]);
        return new PyList(lines);
    }

    private static bool StartsOrEnds(string s, CallArguments a, string name, bool start)
    {
        object?[] p = a.Bind(name, 1, "prefix", "start", "end");
        string text = s;
        if (!CallArguments.IsMissing(p[1]) || !CallArguments.IsMissing(p[2]))
        {
            text = CodePoints.Slice(s, CallArguments.IsMissing(p[1]) || p[1] is null ? null : PyTypes.ToIndex(p[1], "start"),
                CallArguments.IsMissing(p[2]) || p[2] is null ? null : PyTypes.ToIndex(p[2], "end"), null);
        }
        IEnumerable<object?> candidates = p[0] is PyList { IsTuple: true } t ? t.Items : [p[0]];
        foreach (object? candidate in candidates)
        {
            if (!PyMarkup.TryText(candidate, out string c)) throw TemplateError.Type($"{name} first arg must be str or a tuple of str, not {PyTypes.TypeName(candidate)}");
            if (start ? text.StartsWith(c, StringComparison.Ordinal) : text.EndsWith(c, StringComparison.Ordinal)) return true;
        }
        return false;
    }

    private static string Replace(string s, CallArguments a)
    {
        object?[] p = a.Bind("replace", 2, "old", "new", "count");
        string old = Str(p[0], "replace"), replacement = Str(p[1], "replace");
        long count = CallArguments.IsMissing(p[2]) ? -1 : PyTypes.ToIndex(p[2], "count");
        return PyReplace(s, old, replacement, count);
    }

    /// <summary>Python's str.replace, including an empty <paramref name="old"/> (inserted between every character).</summary>
    public static string PyReplace(string s, string old, string replacement, long count)
    {
        if (count < 0 && old.Length > 0) return s.Replace(old, replacement, StringComparison.Ordinal);
        var sb = new StringBuilder();
        if (old.Length == 0)
        {
            List<string> cps = CodePoints.Split(s);
            long done = 0;
            for (int i = 0; i <= cps.Count; i++)
            {
                if (count < 0 || done < count)
                {
                    sb.Append(replacement);
                    done++;
                }
                if (i < cps.Count) sb.Append(cps[i]);
            }
            return sb.ToString();
        }
        int from = 0;
        for (long n = 0; n < count; n++)
        {
            int at = s.IndexOf(old, from, StringComparison.Ordinal);
            if (at < 0) break;
            sb.Append(s, from, at - from).Append(replacement);
            from = at + old.Length;
        }
        return sb.Append(s, from, s.Length - from).ToString();
    }

    private static long Find(string s, CallArguments a, string name, bool fromRight, bool raise)
    {
        string sub = Str(a.Bind(name, 1, "sub")[0], name);
        int at = fromRight ? s.LastIndexOf(sub, StringComparison.Ordinal) : s.IndexOf(sub, StringComparison.Ordinal);
        if (at < 0)
        {
            if (raise) throw TemplateError.Value("substring not found");
            return -1;
        }
        return CodePoints.Length(s[..at]);
    }

    private static long Count(string s, string sub)
    {
        if (sub.Length == 0) return CodePoints.Length(s) + 1;
        long n = 0;
        for (int at = s.IndexOf(sub, StringComparison.Ordinal); at >= 0; at = s.IndexOf(sub, at + sub.Length, StringComparison.Ordinal)) n++;
        return n;
    }

    private static string Join(string separator, object? iterable)
    {
        var sb = new StringBuilder();
        int i = 0;
        foreach (object? item in PyAccess.Iterate(iterable))
        {
            if (!PyMarkup.TryText(item, out string s)) throw TemplateError.Type($"sequence item {i}: expected str instance, {PyTypes.TypeName(item)} found");
            if (i++ > 0) sb.Append(separator);
            sb.Append(s);
        }
        return sb.ToString();
    }

    private static string Pad(string s, CallArguments a, string name, char how)
    {
        object?[] p = a.Bind(name, 1, "width", "fillchar");
        int width = PyTypes.ToInt32(p[0], "width");
        string fill = CallArguments.IsMissing(p[1]) ? " " : Str(p[1], name);
        if (CodePoints.Length(fill) != 1) throw TemplateError.Type("The fill character must be exactly one character long");
        int length = CodePoints.Length(s);
        if (width <= length) return s;
        int total = width - length;
        int left = how switch
        {
            'l' => 0,
            'r' => total,
            _ => total / 2 + (total & width & 1),
        };
        return string.Concat(Enumerable.Repeat(fill, left)) + s + string.Concat(Enumerable.Repeat(fill, total - left));
    }

    private static string ZFill(string s, int width)
    {
        int length = CodePoints.Length(s);
        if (width <= length) return s;
        int sign = s.Length > 0 && s[0] is '+' or '-' ? 1 : 0;
        return s[..sign] + new string('0', width - length) + s[sign..];
    }

    private static PyList Partition(string s, string sep, bool fromRight)
    {
        if (sep.Length == 0) throw TemplateError.Value("empty separator");
        int at = fromRight ? s.LastIndexOf(sep, StringComparison.Ordinal) : s.IndexOf(sep, StringComparison.Ordinal);
        if (at < 0) return fromRight ? PyList.Tuple("", "", s) : PyList.Tuple(s, "", "");
        return PyList.Tuple(s[..at], sep, s[(at + sep.Length)..]);
    }
}
