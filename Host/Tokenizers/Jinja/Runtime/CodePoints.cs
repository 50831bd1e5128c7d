using System.Text;

namespace PeftHost.Tokenizers.Jinja.Runtime;

/// <summary>
/// Python indexes strings by code point, .NET by UTF-16 unit: these helpers give Python's length, indexing,
/// slicing and iteration (a surrogate pair is one character), with a fast path for strings without pairs.
/// </summary>
internal static class CodePoints
{
    public static bool HasSurrogates(string s) => s.AsSpan().IndexOfAnyInRange('\uD800', '\uDFFF') >= 0;

    public static int Length(string s)
    {
        if (!HasSurrogates(s)) return s.Length;
        int n = 0;
        for (int i = 0; i < s.Length; i += Width(s, i)) n++;
        return n;
    }

    /// <summary>The code points of <paramref name="s"/>, each as a string.</summary>
    public static List<string> Split(string s)
    {
        var list = new List<string>(s.Length);
        for (int i = 0; i < s.Length;)
        {
            int w = Width(s, i);
            list.Add(s.Substring(i, w));
            i += w;
        }
        return list;
    }

    /// <summary>The code point at Python index <paramref name="index"/> (negative counts from the end), or null when out of range.</summary>
    public static string? At(string s, long index)
    {
        if (!HasSurrogates(s))
        {
            if (index < 0) index += s.Length;
            return index >= 0 && index < s.Length ? s[(int)index].ToString() : null;
        }
        List<string> cps = Split(s);
        if (index < 0) index += cps.Count;
        return index >= 0 && index < cps.Count ? cps[(int)index] : null;
    }

    public static string Slice(string s, long? start, long? stop, long? step)
    {
        if (!HasSurrogates(s))
        {
            (int from, int count, int by) = PySlice.Resolve(s.Length, start, stop, step);
            if (by == 1) return s.Substring(from, count);
            var sb = new StringBuilder(count);
            for (int i = 0, at = from; i < count; i++, at += by) sb.Append(s[at]);
            return sb.ToString();
        }
        List<string> cps = Split(s);
        (int f, int c, int b) = PySlice.Resolve(cps.Count, start, stop, step);
        var result = new StringBuilder();
        for (int i = 0, at = f; i < c; i++, at += b) result.Append(cps[at]);
        return result.ToString();
    }

    private static int Width(string s, int i) =>
        char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]) ? 2 : 1;
}
