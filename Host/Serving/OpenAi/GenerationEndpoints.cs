using Microsoft.AspNetCore.Http;
using PeftHost.Serving.Completions;

namespace PeftHost.Serving.OpenAi;

/// <summary>
/// POST /v1/completions and /v1/chat/completions: the body checked into a completion, run on the scheduler, and
/// answered whole or streamed as server-sent events (OpenAI's chunks, an optional usage chunk, <c>[DONE]</c>).
/// A client that goes away cancels its request at once; one that runs past the timeout is ended with an error.
/// </summary>
internal sealed class GenerationEndpoints(ServedModel model, OpenAiServerOptions options)
{
    public Task CompletionsAsync(HttpContext context) => RunAsync(context, chat: false);

    public Task ChatCompletionsAsync(HttpContext context) => RunAsync(context, chat: true);

    private async Task RunAsync(HttpContext context, bool chat)
    {
        CompletionSpec spec;
        StreamSettings stream;
        using (RequestBody body = await RequestBody.ReadAsync(context, options.MaxBodyBytes).ConfigureAwait(false))
            (spec, stream) = chat ? GenerationRequestParser.Chat(body, model) : GenerationRequestParser.Completion(body, model);
        var responses = new OpenAiResponses(chat, spec.Model);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted);
        timeout.CancelAfter(TimeSpan.FromSeconds(options.RequestTimeoutSeconds));
        var outcome = new CompletionOutcome();
        // The request is queued (or refused with 429) before anything is written.
        await using IAsyncEnumerator<string> pieces = TextCompletion.StreamAsync(model, spec, outcome, timeout.Token).GetAsyncEnumerator(timeout.Token);
        if (!stream.Stream)
        {
            try
            {
                while (await pieces.MoveNextAsync().ConfigureAwait(false)) { }
            }
            catch (OperationCanceledException) when (!context.RequestAborted.IsCancellationRequested && timeout.IsCancellationRequested)
            {
                await TimedOut().WriteAsync(context).ConfigureAwait(false);
                return;
            }
            context.Response.ContentType = "application/json";
            await context.Response.WriteAsync(responses.Complete(outcome).ToJsonString(OpenAiJson.Options), context.RequestAborted).ConfigureAwait(false);
            return;
        }
        bool more;
        try
        {
            // The first piece (or the end) before the headers: a full queue or an unknown adapter still gets its status code.
            more = await pieces.MoveNextAsync().ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!context.RequestAborted.IsCancellationRequested && timeout.IsCancellationRequested)
        {
            await TimedOut().WriteAsync(context).ConfigureAwait(false);
            return;
        }
        ServerSentEvents events = await ServerSentEvents.StartAsync(context).ConfigureAwait(false);
        bool first = true;
        try
        {
            if (chat)
            {
                // OpenAI's first chat chunk carries the role and empty content.
                await events.SendAsync(responses.Piece("", first: true, stream.IncludeUsage)).ConfigureAwait(false);
                first = false;
            }
            while (more)
            {
                await events.SendAsync(responses.Piece(pieces.Current, first, stream.IncludeUsage)).ConfigureAwait(false);
                first = false;
                more = await pieces.MoveNextAsync().ConfigureAwait(false);
            }
            await events.SendAsync(responses.Finished(outcome.FinishReason!, stream.IncludeUsage)).ConfigureAwait(false);
            if (stream.IncludeUsage) await events.SendAsync(responses.UsageChunk(outcome)).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            return;
        }
        catch (Exception e)
        {
            // Headers are sent: the error travels as an event, as vLLM streams it.
            OpenAiError error = e is OperationCanceledException ? TimedOut() : OpenAiError.From(e);
            await events.SendAsync(error.ToJson()).ConfigureAwait(false);
        }
        await events.DoneAsync().ConfigureAwait(false);
    }

    private OpenAiError TimedOut() => new(408, string.Create(System.Globalization.CultureInfo.InvariantCulture, $"The request ran past the server's timeout of {options.RequestTimeoutSeconds} s (--request-timeout)."), "invalid_request_error", null, "request_timeout");
}
