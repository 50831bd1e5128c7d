namespace PeftHost.Llama.Sampling;

/// <summary>
/// Picks the next token from a row of logits on the CPU, in transformers' order: repetition penalty,
/// then argmax (greedy) or temperature, top-k, top-p and a draw from the softmax. The same processors
/// as the TorchSharp generator, so a backend that only yields logits samples as the others do.
/// </summary>
public sealed class LogitsSampler
{
    private readonly SamplingOptions _options;
    private readonly Random _random;
    private readonly HashSet<int> _seen = [];
    private float[] _scores = [];
    private int[] _order = [];

    /// <summary>A sampler for one sequence whose ids so far are <paramref name="prompt"/>.</summary>
    public LogitsSampler(SamplingOptions options, IEnumerable<int> prompt)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(prompt);
        if (options.DoSample && !(options.Temperature > 0)) throw new ArgumentException("Temperature must be positive when sampling.", nameof(options));
        if (options.TopP <= 0 || options.TopP > 1) throw new ArgumentException("top_p must be in (0, 1].", nameof(options));
        if (options.RepetitionPenalty <= 0) throw new ArgumentException("The repetition penalty must be positive.", nameof(options));
        _options = options;
        _random = options.Seed is long s ? new Random(unchecked((int)s ^ (int)(s >> 32))) : new Random();
        if (options.RepetitionPenalty != 1.0) _seen.UnionWith(prompt);
    }

    /// <summary>Chooses the next id and records it in the sequence.</summary>
    public int Next(ReadOnlySpan<float> logits)
    {
        int id = Choose(logits);
        if (_options.RepetitionPenalty != 1.0) _seen.Add(id);
        return id;
    }

    private int Choose(ReadOnlySpan<float> logits)
    {
        SamplingOptions o = _options;
        if (o.RepetitionPenalty == 1.0 && !o.DoSample) return ArgMax(logits);
        if (_scores.Length != logits.Length) _scores = new float[logits.Length];
        float[] scores = _scores;
        logits.CopyTo(scores);
        if (o.RepetitionPenalty != 1.0)
        {
            float penalty = (float)o.RepetitionPenalty;
            foreach (int id in _seen)
            {
                if ((uint)id < (uint)scores.Length) scores[id] = scores[id] < 0 ? scores[id] * penalty : scores[id] / penalty;
            }
        }
        if (!o.DoSample) return ArgMax(scores);
        if (o.Temperature != 1.0)
        {
            float t = (float)o.Temperature;
            for (int i = 0; i < scores.Length; i++) scores[i] /= t;
        }
        // Candidates in descending order of score; top-k keeps the first k (ties with the k-th kept, as transformers' threshold does).
        if (_order.Length != scores.Length) _order = new int[scores.Length];
        int[] order = _order;
        for (int i = 0; i < order.Length; i++) order[i] = i;
        Array.Sort(order, (a, b) => scores[b].CompareTo(scores[a]));
        int keep = order.Length;
        if (o.TopK > 0 && o.TopK < keep)
        {
            float kth = scores[order[o.TopK - 1]];
            keep = o.TopK;
            while (keep < order.Length && scores[order[keep]] >= kth) keep++;
        }
        float max = scores[order[0]];
        var probs = new double[keep];
        double sum = 0;
        for (int i = 0; i < keep; i++)
        {
            probs[i] = Math.Exp(scores[order[i]] - max);
            sum += probs[i];
        }
        if (o.TopP < 1.0)
        {
            // transformers drops the low tail whose cumulative probability (ascending) is at most 1 - top_p, keeping at least one.
            double tail = 0;
            int cut = keep;
            for (int i = keep - 1; i > 0; i--)
            {
                tail += probs[i] / sum;
                if (tail > 1 - o.TopP) break;
                cut = i;
            }
            for (int i = cut; i < keep; i++) sum -= probs[i];
            keep = cut;
        }
        double u = _random.NextDouble() * sum;
        for (int i = 0; i < keep; i++)
        {
            u -= probs[i];
            if (u <= 0) return order[i];
        }
        return order[keep - 1];
    }

    private static int ArgMax(ReadOnlySpan<float> values)
    {
        int best = 0;
        float top = values[0];
        for (int i = 1; i < values.Length; i++)
        {
            if (values[i] > top)
            {
                top = values[i];
                best = i;
            }
        }
        return best;
    }
}
