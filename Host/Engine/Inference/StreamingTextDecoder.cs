using PeftHost.Tokenizers;

namespace PeftHost.Engine.Inference;

/// <summary>
/// Turns generated ids into text as they come: a multi-byte character split over several tokens is
/// held back until it is complete, and text that may be the start of a stop string is held back
/// until it is known not to be one.
/// </summary>
public sealed class StreamingTextDecoder
{
    private readonly ITextTokenizer _tokenizer;
    private readonly IReadOnlyList<string> _stopStrings;
    private readonly List<int> _ids = [];
    private string _text = "";
    private int _emitted;

    /// <summary>Decodes with <paramref name="tokenizer"/> (special tokens skipped), stopping at <paramref name="stopStrings"/>.</summary>
    public StreamingTextDecoder(ITextTokenizer tokenizer, IReadOnlyList<string> stopStrings)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(stopStrings);
        if (stopStrings.Any(string.IsNullOrEmpty)) throw new ArgumentException("A stop string is empty.", nameof(stopStrings));
        _tokenizer = tokenizer;
        _stopStrings = stopStrings;
    }

    /// <summary>Whether the text has reached a stop string (no more text will come).</summary>
    public bool Stopped { get; private set; }

    /// <summary>The text so far, up to (not including) a stop string once <see cref="Stopped"/>.</summary>
    public string Text => Stopped ? _text : _text[.._emitted];

    /// <summary>Adds a token; returns the text that became final (possibly empty).</summary>
    public string Add(long id)
    {
        if (Stopped) return "";
        _ids.Add(checked((int)id));
        // Decoding the whole generation keeps byte-level merges and word-piece joins exact; generations are short.
        string text = _tokenizer.Decode(_ids, skipSpecialTokens: true);
        int stop = FirstStop(text);
        if (stop >= 0)
        {
            Stopped = true;
            _text = text[..stop];
            return Take(_text.Length);
        }
        _text = text;
        int ready = text.Length;
        // An incomplete UTF-8 sequence decodes to U+FFFD until its last byte arrives.
        while (ready > _emitted && text[ready - 1] == '\uFFFD') ready--;
        ready -= LongestStopPrefixAtEnd(text[..ready]);
        return Take(Math.Max(ready, _emitted));
    }

    /// <summary>Returns whatever is still held back (at the end of generation).</summary>
    public string Flush() => Take(_text.Length);

    private string Take(int end)
    {
        string piece = end > _emitted ? _text[_emitted..end] : "";
        _emitted = Math.Max(_emitted, end);
        return piece;
    }

    private int FirstStop(string text)
    {
        int first = -1;
        // Only text not yet printed can hold a new stop string, with a stop string's length of overlap.
        int from = Math.Max(0, _emitted - _stopStrings.Select(s => s.Length).DefaultIfEmpty(0).Max());
        foreach (string s in _stopStrings)
        {
            int i = text.IndexOf(s, from, StringComparison.Ordinal);
            if (i >= 0 && (first < 0 || i < first)) first = i;
        }
        return first;
    }

    private int LongestStopPrefixAtEnd(string text)
    {
        int longest = 0;
        foreach (string s in _stopStrings)
            for (int n = Math.Min(s.Length - 1, text.Length); n > longest; n--)
                if (text.AsSpan(text.Length - n).SequenceEqual(s.AsSpan(0, n)))
                {
                    longest = n;
                    break;
                }
        return longest;
    }
}
