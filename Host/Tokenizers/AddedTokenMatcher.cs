namespace PeftHost.Tokenizers;

/// <summary>
/// Splits text around added tokens, leftmost-longest like Hugging Face's added vocabulary,
/// honouring <c>lstrip</c>, <c>rstrip</c> and <c>single_word</c>.
/// </summary>
internal sealed class AddedTokenMatcher
{
    private readonly Dictionary<char, AddedToken[]> _byFirstChar;

    public AddedTokenMatcher(IEnumerable<AddedToken> tokens)
    {
        _byFirstChar = tokens
            .Where(t => t.Content.Length > 0)
            .GroupBy(t => t.Content[0])
            .ToDictionary(g => g.Key, g => g.OrderByDescending(t => t.Content.Length).ToArray());
    }

    public bool IsEmpty => _byFirstChar.Count == 0;

    /// <summary>A run of text: either plain text (Token null) or one added token.</summary>
    public readonly record struct Piece(string Text, int Offset, AddedToken? Token);

    public List<Piece> Split(string text)
    {
        var pieces = new List<Piece>();
        int plainStart = 0;
        int i = 0;
        while (i < text.Length)
        {
            AddedToken? hit = _byFirstChar.Count == 0 ? null : MatchAt(text, i);
            if (hit is null)
            {
                i++;
                continue;
            }

            int start = i;
            int end = i + hit.Content.Length;
            if (hit.LStrip)
            {
                while (start > plainStart && char.IsWhiteSpace(text[start - 1]))
                {
                    start--;
                }
            }

            if (hit.RStrip)
            {
                while (end < text.Length && char.IsWhiteSpace(text[end]))
                {
                    end++;
                }
            }

            if (start > plainStart)
            {
                pieces.Add(new Piece(text[plainStart..start], plainStart, null));
            }

            pieces.Add(new Piece(text[start..end], start, hit));
            plainStart = end;
            i = end;
        }

        if (plainStart < text.Length)
        {
            pieces.Add(new Piece(text[plainStart..], plainStart, null));
        }

        return pieces;
    }

    private AddedToken? MatchAt(string text, int i)
    {
        if (!_byFirstChar.TryGetValue(text[i], out AddedToken[]? candidates))
        {
            return null;
        }

        foreach (AddedToken t in candidates)
        {
            if (string.CompareOrdinal(text, i, t.Content, 0, t.Content.Length) != 0)
            {
                continue;
            }

            if (t.SingleWord)
            {
                int end = i + t.Content.Length;
                bool leftOk = i == 0 || !IsWordChar(text[i - 1]);
                bool rightOk = end >= text.Length || !IsWordChar(text[end]);
                if (!leftOk || !rightOk)
                {
                    continue;
                }
            }

            return t;
        }

        return null;
    }

    private static bool IsWordChar(char c) => char.IsLetterOrDigit(c) || c == '_';
}
