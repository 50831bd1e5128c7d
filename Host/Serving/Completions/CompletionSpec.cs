using PeftHost.Models.Generation;

namespace PeftHost.Serving.Completions;

/// <summary>A completion to run, checked: prompt ids, the adapter (null: the base), the new tokens at most, stop strings, sampling.</summary>
/// <param name="Model">The model name the request used (echoed in responses).</param>
/// <param name="Prompt">The prompt's ids.</param>
/// <param name="Adapter">The adapter, or null for the base model.</param>
/// <param name="MaxTokens">New tokens at most.</param>
/// <param name="Stop">Stop strings (not part of the text).</param>
/// <param name="Sampling">Temperature, top-p, top-k, seed, repetition penalty (MaxNewTokens and stop ids are set from the others).</param>
/// <param name="IgnoreEos">vLLM's ignore_eos: generate past end-of-sequence up to max_tokens (benchmarks).</param>
public sealed record CompletionSpec(string Model, IReadOnlyList<int> Prompt, string? Adapter, int MaxTokens, IReadOnlyList<string> Stop, GenerationOptions Sampling, bool IgnoreEos = false)
{
    /// <summary>
    /// Checks the prompt against the context and resolves max_tokens: a given value must fit with the prompt (and
    /// an adapter's virtual tokens); without one, <paramref name="defaultMaxTokens"/> (null: the context's remainder)
    /// clipped to the remainder.
    /// </summary>
    /// <exception cref="ServingRequestException">The prompt is empty or too long, or max_tokens does not fit.</exception>
    public static int ResolveMaxTokens(ServedModel model, int promptTokens, string? adapter, int? maxTokens, int? defaultMaxTokens, string promptParam)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (promptTokens == 0) throw new ServingRequestException("The prompt is empty.", promptParam);
        int extra = model.Scheduler.Decoder.ExtraPositions(adapter);
        int context = model.ContextSize;
        int remainder = context - promptTokens - extra;
        string virtualNote = extra > 0 ? $" and {extra} virtual tokens of the adapter" : "";
        if (remainder < 1)
            throw new ServingRequestException($"This model's maximum context length is {context} tokens. However, your prompt has {promptTokens} tokens{virtualNote}, which leaves no room for a completion. Please reduce the length of the prompt.", promptParam, "context_length_exceeded");
        if (maxTokens is int m)
        {
            if (m > remainder)
                throw new ServingRequestException($"This model's maximum context length is {context} tokens. However, you requested {promptTokens + extra + m} tokens ({promptTokens} in the prompt{virtualNote}, {m} for the completion). Please reduce the length of the prompt or of the completion.", "max_tokens", "context_length_exceeded");
            return m;
        }
        return Math.Min(defaultMaxTokens ?? remainder, remainder);
    }
}
