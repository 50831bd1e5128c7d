using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace PeftHost.Serving.OpenAi;

/// <summary>A server-sent event stream as OpenAI streams: <c>data: JSON</c> events, each flushed at once, ended by <c>data: [DONE]</c>.</summary>
public sealed class ServerSentEvents
{
    private readonly HttpResponse _response;
    private readonly CancellationToken _aborted;

    private ServerSentEvents(HttpContext context)
    {
        _response = context.Response;
        _aborted = context.RequestAborted;
    }

    /// <summary>Starts the stream: status 200, text/event-stream, no buffering.</summary>
    public static async Task<ServerSentEvents> StartAsync(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        context.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
        context.Response.StatusCode = 200;
        context.Response.ContentType = "text/event-stream; charset=utf-8";
        context.Response.Headers.CacheControl = "no-cache";
        context.Response.Headers["X-Accel-Buffering"] = "no";
        await context.Response.StartAsync(context.RequestAborted).ConfigureAwait(false);
        return new ServerSentEvents(context);
    }

    /// <summary>Sends one JSON event.</summary>
    public Task SendAsync(JsonObject data) => WriteAsync("data: " + data.ToJsonString(OpenAiJson.Options) + "\n\n");

    /// <summary>Ends the stream with <c>data: [DONE]</c>.</summary>
    public Task DoneAsync() => WriteAsync("data: [DONE]\n\n");

    private async Task WriteAsync(string text)
    {
        await _response.Body.WriteAsync(Encoding.UTF8.GetBytes(text), _aborted).ConfigureAwait(false);
        await _response.Body.FlushAsync(_aborted).ConfigureAwait(false);
    }
}
