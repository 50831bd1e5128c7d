namespace PeftHost.Training.Evaluation;

/// <summary>
/// Corpus BLEU-4 as sacreBLEU computes it on pre-tokenised text (tokenize="none": tokens split on
/// whitespace): clipped n-gram matches summed over the corpus for n = 1..4, the geometric mean of
/// the four precisions with sacreBLEU's default "exp" smoothing (the k-th zero-match order counts as
/// 1 / 2^k matches), times the brevity penalty exp(1 - r/c) when the hypotheses are shorter. 0..100.
/// </summary>
public static class Bleu
{
    /// <summary>The corpus score of hypotheses against one reference each.</summary>
    public static double Corpus(IReadOnlyList<string> hypotheses, IReadOnlyList<string> references)
    {
        if (hypotheses.Count != references.Count) throw new ArgumentException($"BLEU needs one reference per hypothesis ({hypotheses.Count} hypotheses, {references.Count} references).");
        const int order = 4;
        var correct = new long[order];
        var total = new long[order];
        long sysLen = 0, refLen = 0;
        for (int i = 0; i < hypotheses.Count; i++)
        {
            string[] h = Tokens(hypotheses[i]), r = Tokens(references[i]);
            sysLen += h.Length;
            refLen += r.Length;
            for (int n = 1; n <= order; n++)
            {
                Dictionary<string, int> hc = NGrams(h, n), rc = NGrams(r, n);
                foreach ((string gram, int count) in hc) correct[n - 1] += Math.Min(count, rc.GetValueOrDefault(gram));
                total[n - 1] += Math.Max(0, h.Length - n + 1);
            }
        }
        var precisions = new double[order];
        double smooth = 1.0;
        for (int n = 0; n < order; n++)
        {
            if (total[n] == 0) break;
            if (correct[n] == 0)
            {
                smooth *= 2;
                precisions[n] = 100.0 / (smooth * total[n]);
            }
            else precisions[n] = 100.0 * correct[n] / total[n];
        }
        double bp = sysLen >= refLen ? 1.0 : sysLen > 0 ? Math.Exp(1 - refLen / (double)sysLen) : 0.0;
        // sacreBLEU's my_log: log(0) counts as -9999999999, so a missing order gives 0.
        double logSum = precisions.Sum(p => p == 0 ? -9999999999.0 : Math.Log(p));
        return bp * Math.Exp(logSum / order);
    }

    private static string[] Tokens(string text) => text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);

    private static Dictionary<string, int> NGrams(string[] tokens, int n)
    {
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i + n <= tokens.Length; i++)
        {
            string gram = string.Join('\u0001', tokens, i, n);
            counts[gram] = counts.GetValueOrDefault(gram) + 1;
        }
        return counts;
    }
}
