using PeftHost.Llama.Sampling;

namespace PeftHost.Llama;

/// <summary>Token-by-token generation on a <see cref="LlamaCppContext"/>: prefill once, then one decode per token, sampled on the CPU.</summary>
public static class LlamaCppGenerator
{
    /// <summary>Yields up to <see cref="SamplingOptions.MaxNewTokens"/> ids after <paramref name="prompt"/>, stopping after a stop id.</summary>
    public static IEnumerable<int> Generate(LlamaCppContext context, IReadOnlyList<int> prompt, SamplingOptions options)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(prompt);
        ArgumentNullException.ThrowIfNull(options);
        if (prompt.Count == 0) throw new ArgumentException("The prompt is empty.", nameof(prompt));
        if (prompt.Count + options.MaxNewTokens > context.ContextSize)
            throw new ArgumentException($"{prompt.Count} prompt tokens + {options.MaxNewTokens} new tokens exceed the context size {context.ContextSize}.");
        var sampler = new LogitsSampler(options, prompt);
        return Run(context, [.. prompt], options, sampler);
    }

    private static IEnumerable<int> Run(LlamaCppContext context, int[] prompt, SamplingOptions options, LogitsSampler sampler)
    {
        if (options.MaxNewTokens <= 0) yield break;
        int token = sampler.Next(context.Prefill(prompt));
        yield return token;
        for (int i = 1; i < options.MaxNewTokens && !options.StopIds.Contains(token); i++)
        {
            token = sampler.Next(context.Decode(token, prompt.Length + i - 1));
            yield return token;
        }
    }
}
