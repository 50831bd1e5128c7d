using PeftHost.Models.Generation;

namespace PeftHost.Serving.Completions;

/// <summary>OpenAI's sampling parameters as decoding settings, checked with OpenAI's ranges.</summary>
public static class Sampling
{
    /// <summary>The default temperature, as OpenAI's (0 is greedy).</summary>
    public const double DefaultTemperature = 1.0;

    /// <summary>
    /// temperature in [0, 2] (default 1; 0: greedy), top_p in (0, 1], top_k (vLLM's: -1 or 0 = off, else at
    /// least 1), seed, repetition_penalty (vLLM's: positive, 1 = off).
    /// </summary>
    /// <exception cref="ServingRequestException">A value is out of range (param names it).</exception>
    public static GenerationOptions Options(double? temperature, double? topP, int? topK, long? seed, double? repetitionPenalty)
    {
        double t = temperature ?? DefaultTemperature;
        if (!double.IsFinite(t) || t < 0 || t > 2) throw new ServingRequestException($"'temperature' is {t}; expected a number from 0 to 2 (0 = greedy).", "temperature");
        double p = topP ?? 1.0;
        if (!double.IsFinite(p) || p <= 0 || p > 1) throw new ServingRequestException($"'top_p' is {p}; expected a number in (0, 1].", "top_p");
        int k = topK ?? 0;
        if (k < -1) throw new ServingRequestException($"'top_k' is {k}; expected -1 or 0 (off) or a positive number of tokens.", "top_k");
        double r = repetitionPenalty ?? 1.0;
        if (!double.IsFinite(r) || r <= 0) throw new ServingRequestException($"'repetition_penalty' is {r}; expected a positive number (1 = off).", "repetition_penalty");
        return new GenerationOptions
        {
            DoSample = t > 0,
            Temperature = t > 0 ? t : 1.0,
            TopP = p,
            TopK = Math.Max(k, 0),
            Seed = seed,
            RepetitionPenalty = r,
        };
    }

    /// <summary>Checks stop strings (OpenAI: at most 4, none empty).</summary>
    /// <exception cref="ServingRequestException">Too many or an empty one.</exception>
    public static IReadOnlyList<string> Stop(IReadOnlyList<string>? stop)
    {
        if (stop is null) return [];
        if (stop.Count > 4) throw new ServingRequestException($"'stop' has {stop.Count} strings; expected at most 4.", "stop");
        if (stop.Any(string.IsNullOrEmpty)) throw new ServingRequestException("'stop' holds an empty string.", "stop");
        return stop;
    }
}
