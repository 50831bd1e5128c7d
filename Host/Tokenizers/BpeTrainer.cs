using System.Text.RegularExpressions;

namespace PeftHost.Tokenizers;

/// <summary>
/// Learns byte-level BPE merges from a text, deterministically: the most frequent adjacent pair wins,
/// ties go to the ordinal-smallest pair, so the same text and size always give the same files.
/// </summary>
internal static class BpeTrainer
{
    // Bytes that never occur in UTF-8 text (0xC0, 0xC1, 0xF5-0xFF), highest first: a vocabulary smaller
    // than 256 + specials leaves these out, and every string still encodes.
    private static readonly byte[] NeverInUtf8 = [0xFF, 0xFE, 0xFD, 0xFC, 0xFB, 0xFA, 0xF9, 0xF8, 0xF7, 0xF6, 0xF5, 0xC1, 0xC0];

    /// <summary>The smallest base alphabet: the 256 bytes less those UTF-8 never uses.</summary>
    public static int MinimumAlphabet => 256 - NeverInUtf8.Length;

    public static (List<string> Vocab, List<(string A, string B)> Merges) Train(string text, int targetSize)
    {
        if (targetSize < MinimumAlphabet)
            throw new ArgumentOutOfRangeException(nameof(targetSize), targetSize, $"a byte-level vocabulary needs at least {MinimumAlphabet} byte tokens.");
        var dropped = new HashSet<byte>(NeverInUtf8.Take(Math.Max(0, 256 - targetSize)));
        var vocab = Enumerable.Range(0, 256).Where(b => !dropped.Contains((byte)b)).Select(b => ByteLevelAlphabet.Map((byte)b).ToString()).ToList();
        var known = new HashSet<string>(vocab, StringComparer.Ordinal);
        var words = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (Match m in Regex.Matches(text, HfPreTokenizer.Gpt2Pattern))
        {
            string w = ByteLevelAlphabet.Encode(m.Value);
            words[w] = words.GetValueOrDefault(w) + 1;
        }

        List<(List<string> Symbols, int Count)> corpus = words
            .OrderBy(kv => kv.Key, StringComparer.Ordinal)
            .Select(kv => (kv.Key.Select(c => c.ToString()).ToList(), kv.Value))
            .ToList();
        var merges = new List<(string, string)>();
        while (vocab.Count < targetSize)
        {
            var counts = new Dictionary<(string, string), int>();
            foreach ((List<string> symbols, int count) in corpus)
            {
                for (int i = 0; i + 1 < symbols.Count; i++)
                {
                    (string, string) pair = (symbols[i], symbols[i + 1]);
                    counts[pair] = counts.GetValueOrDefault(pair) + count;
                }
            }

            (string A, string B) best = default;
            int bestCount = 0;
            foreach (((string a, string b), int c) in counts)
            {
                string merged = a + b;
                if (known.Contains(merged))
                {
                    continue;
                }

                int order = bestCount == 0 ? -1 : string.CompareOrdinal(a + " " + b, best.A + " " + best.B);
                if (c > bestCount || (c == bestCount && order < 0))
                {
                    best = (a, b);
                    bestCount = c;
                }
            }

            if (bestCount == 0)
            {
                break;
            }

            merges.Add(best);
            string token = best.A + best.B;
            vocab.Add(token);
            known.Add(token);
            foreach ((List<string> symbols, _) in corpus)
            {
                for (int i = 0; i + 1 < symbols.Count; i++)
                {
                    if (symbols[i] == best.A && symbols[i + 1] == best.B)
                    {
                        symbols[i] = token;
                        symbols.RemoveAt(i + 1);
                    }
                }
            }
        }

        return (vocab, merges);
    }
}
