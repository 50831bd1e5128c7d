using System.Text.RegularExpressions;

namespace PeftHost.Tokenizers;

/// <summary>
/// Learns byte-level BPE merges from a text, deterministically: the most frequent adjacent pair wins,
/// ties go to the ordinal-smallest pair, so the same text and size always give the same files.
/// </summary>
internal static class BpeTrainer
{
    public static (List<string> Vocab, List<(string A, string B)> Merges) Train(string text, int targetSize)
    {
        var vocab = Enumerable.Range(0, 256).Select(b => ByteLevelAlphabet.Map((byte)b).ToString()).ToList();
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
