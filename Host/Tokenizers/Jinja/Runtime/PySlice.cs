namespace PeftHost.Tokenizers.Jinja.Runtime;

/// <summary>Python's slice.indices: clamps start/stop/step of <c>x[a:b:c]</c> to a sequence's length.</summary>
internal static class PySlice
{
    /// <summary>The first index, the number of items and the step of the slice.</summary>
    public static (int Start, int Count, int Step) Resolve(int length, long? start, long? stop, long? step)
    {
        long by = step ?? 1;
        if (by == 0) throw TemplateError.Value("slice step cannot be zero");
        long from, to;
        if (by > 0)
        {
            from = start is long s ? Clamp(s < 0 ? s + length : s, 0, length) : 0;
            to = stop is long e ? Clamp(e < 0 ? e + length : e, 0, length) : length;
            long count = to > from ? (to - from + by - 1) / by : 0;
            return ((int)from, (int)count, (int)Math.Min(by, int.MaxValue));
        }
        from = start is long s2 ? Clamp(s2 < 0 ? s2 + length : s2, -1, length - 1) : length - 1;
        to = stop is long e2 ? Clamp(e2 < 0 ? e2 + length : e2, -1, length - 1) : -1;
        long n = from > to ? (from - to - by - 1) / -by : 0;
        return ((int)from, (int)n, (int)Math.Max(by, int.MinValue + 1));
    }

    private static long Clamp(long v, long lo, long hi) => v < lo ? lo : v > hi ? hi : v;
}
