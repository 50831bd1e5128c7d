using System.Runtime.CompilerServices;
using PeftHost.Engine.Inference;
using PeftHost.Serving.Scheduling;

namespace PeftHost.Serving.Completions;

/// <summary>
/// Runs a <see cref="CompletionSpec"/> on a served model and streams its text: the scheduler's tokens turned into
/// text as they come (a character split over tokens is held until complete, text that may begin a stop string
/// until it is known not to), ending at end-of-sequence (not printed), a stop string (not printed) or max_tokens.
/// Leaving the stream early (a stop string, the caller's cancellation, a client gone) frees the request's row.
/// Every generated token yields a piece, empty when it adds no final text yet.
/// </summary>
public static class TextCompletion
{
    /// <summary>Streams the completion's text; <paramref name="outcome"/> holds the finish reason and usage once the stream ends.</summary>
    /// <exception cref="QueueFullException">The scheduler's queue is full (thrown before the first piece).</exception>
    /// <exception cref="KeyNotFoundException">The adapter was unloaded before the request was admitted.</exception>
    public static async IAsyncEnumerable<string> StreamAsync(ServedModel model, CompletionSpec spec, CompletionOutcome outcome, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(outcome);
        HashSet<long> eos = spec.IgnoreEos ? [] : [.. model.Tokenizer.EosTokenIds.Select(i => (long)i)];
        var options = spec.Sampling with { MaxNewTokens = spec.MaxTokens, StopTokenIds = eos };
        using GenerationRequest request = model.Scheduler.Submit(spec.Prompt, spec.Adapter, options, cancellationToken);
        outcome.PromptTokens = spec.Prompt.Count;
        var decoder = new StreamingTextDecoder(model.Tokenizer, spec.Stop);
        string? finish = null;
        await foreach (int id in request.Tokens.ReadAllAsync(cancellationToken).ConfigureAwait(false))
        {
            outcome.CompletionTokens++;
            if (eos.Contains(id))
            {
                finish = "stop";
                break;
            }
            // One piece per token, possibly empty (held back, or a token without text): a stream shows every step.
            yield return decoder.Add(id);
            if (decoder.Stopped)
            {
                finish = "stop";
                break;
            }
        }
        // Ended here (stop string, end of sequence): the scheduler frees the row at its next step.
        request.Cancel();
        string rest = decoder.Flush();
        if (rest.Length > 0) yield return rest;
        cancellationToken.ThrowIfCancellationRequested();
        if (finish is null && request.Finish == GenerationFinish.Cancelled)
            throw new OperationCanceledException("The server stopped before the completion ended.");
        outcome.Text = decoder.Text;
        outcome.FinishReason = finish ?? (request.Finish == GenerationFinish.EndOfSequence ? "stop" : "length");
    }

    /// <summary>Runs the completion to its end and returns its outcome (text, finish reason, usage).</summary>
    public static async Task<CompletionOutcome> RunAsync(ServedModel model, CompletionSpec spec, CancellationToken cancellationToken = default)
    {
        var outcome = new CompletionOutcome();
        await foreach (string _ in StreamAsync(model, spec, outcome, cancellationToken).ConfigureAwait(false)) { }
        return outcome;
    }
}
