using System.Globalization;
using System.Text;
using PeftHost.Tokenizers.Jinja.Runtime;

namespace PeftHost.Tokenizers.Jinja.Syntax;

/// <summary>
/// Splits a template into tokens exactly as Jinja 3.1's lexer does: newlines normalised and one trailing
/// newline dropped; <c>{{ }}</c>, <c>{% %}</c>, <c>{# #}</c> and raw blocks; whitespace control with <c>-</c> and
/// <c>+</c>; trim_blocks (the newline after a block or comment tag) and lstrip_blocks (spaces and tabs before
/// a block or comment tag at the start of a line); tag ends recognised only when brackets are balanced.
/// </summary>
internal sealed class Lexer
{
    private static readonly string[] TwoCharOperators = ["//", "**", "==", "!=", ">=", "<="];
    private const string OneCharOperators = "+-/*%~[](){}><=.:|,;";

    private readonly string _s;
    private readonly bool _trimBlocks;
    private readonly bool _lstripBlocks;
    private readonly List<int> _lineStarts = [0];
    private readonly List<Token> _tokens = [];
    private bool _lineStarting = true;

    private Lexer(string source, bool trimBlocks, bool lstripBlocks)
    {
        _s = source;
        _trimBlocks = trimBlocks;
        _lstripBlocks = lstripBlocks;
        for (int i = 0; i < source.Length; i++)
        {
            if (source[i] == '\n') _lineStarts.Add(i + 1);
        }
    }

    public static List<Token> Tokenize(string source, bool trimBlocks, bool lstripBlocks, bool keepTrailingNewline)
    {
        var lexer = new Lexer(NormalizeNewlines(source, keepTrailingNewline), trimBlocks, lstripBlocks);
        lexer.Run();
        return lexer._tokens;
    }

    /// <summary>\r\n and \r become \n; without keep_trailing_newline one final newline is dropped.</summary>
    public static string NormalizeNewlines(string source, bool keepTrailingNewline)
    {
        string s = source.Contains('\r', StringComparison.Ordinal) ? source.Replace("\r\n", "\n", StringComparison.Ordinal).Replace('\r', '\n') : source;
        return !keepTrailingNewline && s.EndsWith('\n') ? s[..^1] : s;
    }

    private void Run()
    {
        int pos = 0;
        while (pos < _s.Length)
        {
            int tag = FindTagStart(pos);
            if (tag < 0)
            {
                Emit(TokenKind.Data, _s[pos..], pos);
                break;
            }
            char kind = _s[tag + 1];
            int p = tag + 2;
            char sign = p < _s.Length && _s[p] is '-' or '+' ? _s[p] : '\0';
            if (sign != '\0') p++;
            int rawEnd = kind == '%' ? MatchRawBegin(p) : -1;
            string text = StripBefore(_s[pos..tag], sign, lstripApplies: kind != '{');
            if (text.Length > 0) Emit(TokenKind.Data, text, pos);
            if (rawEnd >= 0)
            {
                pos = Raw(rawEnd, tag);
            }
            else if (kind == '#')
            {
                pos = Comment(p, tag);
            }
            else
            {
                pos = Tag(kind == '{', p, tag);
            }
        }
        Emit(TokenKind.Eof, "", _s.Length);
    }

    private int FindTagStart(int from)
    {
        for (int i = _s.IndexOf('{', from); i >= 0 && i + 1 < _s.Length; i = _s.IndexOf('{', i + 1))
        {
            if (_s[i + 1] is '{' or '%' or '#') return i;
        }
        return -1;
    }

    // The text before a tag: "-" strips all whitespace; lstrip_blocks strips spaces and tabs back to the line start.
    private string StripBefore(string text, char sign, bool lstripApplies)
    {
        if (sign == '-') return PyStringMethods.Strip(text, null, left: false, right: true);
        if (sign == '+' || !_lstripBlocks || !lstripApplies) return text;
        int lineStart = text.LastIndexOf('\n') + 1;
        if ((lineStart > 0 || _lineStarting) && lineStart < text.Length)
        {
            for (int i = lineStart; i < text.Length; i++)
            {
                if (!PyStringMethods.IsSpace(text[i])) return text;
            }
            return text[..lineStart];
        }
        return text;
    }

    // {%[-+]? \s* raw \s* (-%}\s* | %}): the end of the opening raw tag, or -1.
    private int MatchRawBegin(int p)
    {
        int i = SkipSpace(p);
        if (!At(i, "raw")) return -1;
        i = SkipSpace(i + 3);
        if (At(i, "-%}")) return SkipSpace(i + 3);
        return At(i, "%}") ? i + 2 : -1;
    }

    private int Raw(int bodyStart, int tagStart)
    {
        _lineStarting = _s[bodyStart - 1] == '\n';
        for (int i = _s.IndexOf("{%", bodyStart, StringComparison.Ordinal); i >= 0; i = _s.IndexOf("{%", i + 1, StringComparison.Ordinal))
        {
            int j = i + 2;
            char sign = j < _s.Length && _s[j] is '-' or '+' ? _s[j] : '\0';
            if (sign != '\0') j++;
            j = SkipSpace(j);
            if (!At(j, "endraw")) continue;
            j = SkipSpace(j + 6);
            int end = BlockEnd(j);
            if (end < 0) continue;
            string body = StripBefore(_s[bodyStart..i], sign, lstripApplies: true);
            if (body.Length > 0) Emit(TokenKind.Data, body, bodyStart);
            _lineStarting = _s[end - 1] == '\n';
            return end;
        }
        throw new JinjaSyntaxException("Missing end of raw directive", PositionOf(tagStart));
    }

    private int Comment(int p, int tagStart)
    {
        for (int i = p; i < _s.Length; i++)
        {
            int end = -1;
            if (_s[i] == '+' && At(i + 1, "#}")) end = i + 3;
            else if (_s[i] == '-' && At(i + 1, "#}")) end = SkipSpace(i + 3);
            else if (At(i, "#}")) end = i + 2 + (_trimBlocks && At(i + 2, "\n") ? 1 : 0);
            if (end < 0) continue;
            _lineStarting = _s[end - 1] == '\n';
            return end;
        }
        throw new JinjaSyntaxException("Missing end of comment tag", PositionOf(tagStart));
    }

    // +%} keeps what follows; -%} strips all whitespace after it; %} drops one newline under trim_blocks.
    private int BlockEnd(int p)
    {
        if (At(p, "+%}")) return p + 3;
        if (At(p, "-%}")) return SkipSpace(p + 3);
        if (At(p, "%}")) return p + 2 + (_trimBlocks && At(p + 2, "\n") ? 1 : 0);
        return -1;
    }

    private int VariableEnd(int p)
    {
        if (At(p, "-}}")) return SkipSpace(p + 3);
        return At(p, "}}") ? p + 2 : -1;
    }

    private int Tag(bool variable, int p, int tagStart)
    {
        Emit(variable ? TokenKind.VariableBegin : TokenKind.BlockBegin, variable ? "{{" : "{%", tagStart);
        var brackets = new Stack<char>();
        while (true)
        {
            if (brackets.Count == 0)
            {
                int end = variable ? VariableEnd(p) : BlockEnd(p);
                if (end >= 0)
                {
                    Emit(variable ? TokenKind.VariableEnd : TokenKind.BlockEnd, variable ? "}}" : "%}", p);
                    _lineStarting = _s[end - 1] == '\n';
                    return end;
                }
            }
            if (p >= _s.Length) return p; // the parser reports the unclosed tag at the end of the template
            char c = _s[p];
            if (PyStringMethods.IsSpace(c)) p++;
            else if (char.IsAsciiDigit(c)) p = Number(p);
            else if (IsNameChar(c)) p = Name(p);
            else if (c is '\'' or '"') p = StringLiteral(p);
            else p = Operator(p, brackets);
        }
    }

    private int Name(int p)
    {
        int end = p;
        while (end < _s.Length && IsNameChar(_s[end])) end++;
        Emit(TokenKind.Name, _s[p..end], p);
        return end;
    }

    private static bool IsNameChar(char c) => char.IsLetterOrDigit(c) || c == '_'
        || CharUnicodeInfo.GetUnicodeCategory(c) is UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.ConnectorPunctuation;

    private int Number(int p)
    {
        // Jinja's float_re first ((?<!\.) digits, then an exponent or a fraction), then integer_re.
        if (p == 0 || _s[p - 1] != '.')
        {
            int whole = Digits(p);
            int fraction = At(whole, ".") ? Digits(whole + 1) : -1;
            if (fraction <= whole + 1) fraction = -1;
            int end = fraction > 0 ? Exponent(fraction) : -1;
            if (end < 0) end = Exponent(whole);
            if (end < 0) end = fraction;
            if (end > 0)
            {
                string text = _s[p..end].Replace("_", "", StringComparison.Ordinal);
                Emit(TokenKind.Float, _s[p..end], p, double.Parse(text, NumberStyles.Float, CultureInfo.InvariantCulture));
                return end;
            }
        }
        int i = p + 1;
        int radix = 10;
        if (_s[p] == '0' && p + 1 < _s.Length && char.ToLowerInvariant(_s[p + 1]) is 'b' or 'o' or 'x')
        {
            radix = char.ToLowerInvariant(_s[p + 1]) switch { 'b' => 2, 'o' => 8, _ => 16 };
            int j = p + 2;
            while (j < _s.Length)
            {
                int k = _s[j] == '_' ? j + 1 : j;
                if (k < _s.Length && IsRadixDigit(_s[k], radix)) j = k + 1;
                else break;
            }
            if (j > p + 2) i = j;
            else radix = 10;
        }
        if (radix == 10)
        {
            char allowed = _s[p] == '0' ? '0' : '\0';
            while (i < _s.Length)
            {
                int k = _s[i] == '_' ? i + 1 : i;
                if (k < _s.Length && (allowed == '0' ? _s[k] == '0' : char.IsAsciiDigit(_s[k]))) i = k + 1;
                else break;
            }
        }
        string literal = _s[p..i];
        string digits = literal.Replace("_", "", StringComparison.Ordinal);
        long value;
        try
        {
            value = radix == 10 ? long.Parse(digits, NumberStyles.None, CultureInfo.InvariantCulture) : Convert.ToInt64(digits[2..], radix);
            if (radix != 10 && value < 0) throw new OverflowException();
        }
        catch (OverflowException)
        {
            throw new JinjaSyntaxException($"integer literal {literal} is beyond 64 bits", PositionOf(p));
        }
        Emit(TokenKind.Integer, literal, p, value);
        return i;
    }

    private static bool IsRadixDigit(char c, int radix) => radix switch
    {
        2 => c is '0' or '1',
        8 => c is >= '0' and <= '7',
        _ => char.IsAsciiHexDigit(c),
    };

    // \d+(_\d+)*: the end of the digits, or p when there are none.
    private int Digits(int p)
    {
        int i = p;
        while (i < _s.Length && char.IsAsciiDigit(_s[i])) i++;
        if (i == p) return p;
        while (i + 1 < _s.Length && _s[i] == '_' && char.IsAsciiDigit(_s[i + 1]))
        {
            i++;
            while (i < _s.Length && char.IsAsciiDigit(_s[i])) i++;
        }
        return i;
    }

    private int Exponent(int p)
    {
        if (p >= _s.Length || _s[p] is not ('e' or 'E')) return -1;
        int j = p + 1;
        if (j < _s.Length && _s[j] is '+' or '-') j++;
        int end = Digits(j);
        return end > j ? end : -1;
    }

    private int StringLiteral(int p)
    {
        char quote = _s[p];
        int i = p + 1;
        while (i < _s.Length && _s[i] != quote) i += _s[i] == '\\' ? 2 : 1;
        if (i >= _s.Length) throw new JinjaSyntaxException($"unexpected character {PyText.Repr(quote.ToString())}: the string is not closed", PositionOf(p));
        Emit(TokenKind.String, Unescape(_s[(p + 1)..i], p), p);
        return i + 1;
    }

    // Python's unicode-escape decoding, which Jinja applies to string literals.
    private string Unescape(string body, int at)
    {
        int slash = body.IndexOf('\\');
        if (slash < 0) return body;
        var sb = new StringBuilder(body.Length);
        sb.Append(body, 0, slash);
        for (int i = slash; i < body.Length; i++)
        {
            char c = body[i];
            if (c != '\\' || i + 1 >= body.Length)
            {
                sb.Append(c);
                continue;
            }
            char e = body[++i];
            switch (e)
            {
                case '\\': sb.Append('\\'); break;
                case '\'': sb.Append('\''); break;
                case '"': sb.Append('"'); break;
                case 'a': sb.Append('\a'); break;
                case 'b': sb.Append('\b'); break;
                case 'f': sb.Append('\f'); break;
                case 'n': sb.Append('\n'); break;
                case 'r': sb.Append('\r'); break;
                case 't': sb.Append('\t'); break;
                case 'v': sb.Append('\v'); break;
                case '\n': break;
                case >= '0' and <= '7':
                    int end = i;
                    while (end < body.Length && end < i + 3 && body[end] is >= '0' and <= '7') end++;
                    sb.Append((char)Convert.ToInt32(body[i..end], 8));
                    i = end - 1;
                    break;
                case 'x':
                case 'u':
                case 'U':
                    int width = e == 'x' ? 2 : e == 'u' ? 4 : 8;
                    if (!IsHex(body, i + 1, width))
                        throw new JinjaSyntaxException($"truncated \\{e}{new string('X', width)} escape in a string", PositionOf(at));
                    int cp = Convert.ToInt32(body.Substring(i + 1, width), 16);
                    if (cp > 0x10FFFF) throw new JinjaSyntaxException("illegal Unicode character in a string escape", PositionOf(at));
                    sb.Append(cp is >= 0xD800 and <= 0xDFFF ? ((char)cp).ToString() : char.ConvertFromUtf32(cp));
                    i += width;
                    break;
                case 'N':
                    throw new JinjaSyntaxException("\\N{...} escapes (Unicode character names) are not supported", PositionOf(at));
                default:
                    // An unknown escape stays as written; before a non-ASCII character Python's backslashreplace
                    // step has already turned that character into an escape, which stays as text.
                    sb.Append('\\');
                    if (e <= '\x7f') sb.Append(e);
                    else if (e < '\u0100') sb.Append('x').Append(((int)e).ToString("x2", CultureInfo.InvariantCulture));
                    else sb.Append('u').Append(((int)e).ToString("x4", CultureInfo.InvariantCulture));
                    break;
            }
        }
        return sb.ToString();
    }

    private static bool IsHex(string s, int start, int count)
    {
        if (start + count > s.Length) return false;
        for (int i = start; i < start + count; i++)
        {
            if (!char.IsAsciiHexDigit(s[i])) return false;
        }
        return true;
    }

    private int Operator(int p, Stack<char> brackets)
    {
        string? op = null;
        foreach (string two in TwoCharOperators)
        {
            if (At(p, two))
            {
                op = two;
                break;
            }
        }
        if (op is null && OneCharOperators.Contains(_s[p], StringComparison.Ordinal)) op = _s[p].ToString();
        if (op is null) throw new JinjaSyntaxException($"unexpected character {PyText.Repr(_s[p].ToString())}", PositionOf(p));
        switch (op)
        {
            case "(": brackets.Push(')'); break;
            case "[": brackets.Push(']'); break;
            case "{": brackets.Push('}'); break;
            case ")" or "]" or "}":
                if (brackets.Count == 0) throw new JinjaSyntaxException($"unexpected '{op}'", PositionOf(p));
                char expected = brackets.Pop();
                if (expected != op[0]) throw new JinjaSyntaxException($"unexpected '{op}', expected '{expected}'", PositionOf(p));
                break;
        }
        Emit(TokenKind.Operator, op, p);
        return p + op.Length;
    }

    private bool At(int p, string text) => p >= 0 && p + text.Length <= _s.Length && string.CompareOrdinal(_s, p, text, 0, text.Length) == 0;

    private int SkipSpace(int p)
    {
        while (p < _s.Length && PyStringMethods.IsSpace(_s[p])) p++;
        return p;
    }

    private void Emit(TokenKind kind, string value, int offset, object? number = null) =>
        _tokens.Add(new Token(kind, value, number, PositionOf(offset)));

    private SourcePosition PositionOf(int offset)
    {
        int line = _lineStarts.BinarySearch(offset);
        if (line < 0) line = ~line - 1;
        return new SourcePosition(line + 1, offset - _lineStarts[line] + 1);
    }
}
