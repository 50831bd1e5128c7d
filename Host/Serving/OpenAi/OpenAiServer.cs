using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace PeftHost.Serving.OpenAi;

/// <summary>
/// OpenAI's API as vLLM serves it, on Kestrel, over a <see cref="ServedModel"/>: /v1/models, /v1/completions,
/// /v1/chat/completions (streaming as server-sent events), /v1/load_lora_adapter and /v1/unload_lora_adapter,
/// /health and /metrics (Prometheus). Loopback by default: any other address needs an API key, which every
/// request but /health must then present. Every failure is OpenAI's error object with its status, never a stack trace.
/// </summary>
public sealed class OpenAiServer : IAsyncDisposable
{
    private static readonly string[] Endpoints =
        ["/health", "/metrics", "/v1/models", "/v1/completions", "/v1/chat/completions", "/v1/load_lora_adapter", "/v1/unload_lora_adapter"];

    private readonly WebApplication _app;

    private OpenAiServer(WebApplication app, ServedModel model, Uri address)
    {
        _app = app;
        Model = model;
        Address = address;
    }

    /// <summary>The address the server listens on (the port resolved when 0 was asked).</summary>
    public Uri Address { get; }

    /// <summary>The model served.</summary>
    public ServedModel Model { get; }

    /// <summary>The IP address <paramref name="options"/> binds, checked against the API key rule.</summary>
    /// <exception cref="ArgumentException">The host is not an IP address or localhost, the port is out of range, a non-loopback address has no API key, or a limit is out of range.</exception>
    public static IPAddress CheckBinding(OpenAiServerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        IPAddress address = options.Host == "localhost" ? IPAddress.Loopback
            : IPAddress.TryParse(options.Host, out IPAddress? parsed) ? parsed
            : throw new ArgumentException($"--host {options.Host}: expected an IP address (127.0.0.1, ::1, 0.0.0.0, ...) or localhost.");
        if (options.Port is < 0 or > 65535) throw new ArgumentException($"--port {options.Port}: expected 0 (any free port) to 65535.");
        if (!IPAddress.IsLoopback(address) && string.IsNullOrEmpty(options.ApiKey))
            throw new ArgumentException($"--host {options.Host} is not a loopback address: serving beyond this machine needs an API key (--api-key KEY or --api-key-file FILE).");
        if (!(options.RequestTimeoutSeconds > 0)) throw new ArgumentException($"--request-timeout {options.RequestTimeoutSeconds}: expected a positive number of seconds.");
        if (options.MaxBodyBytes < 1024) throw new ArgumentException($"--max-body {options.MaxBodyBytes}: expected at least 1024 bytes.");
        return address;
    }

    /// <summary>Starts listening; the returned server runs until disposed.</summary>
    /// <exception cref="ArgumentException">See <see cref="CheckBinding"/>.</exception>
    /// <exception cref="IOException">The address cannot be bound (in use, not permitted).</exception>
    public static async Task<OpenAiServer> StartAsync(ServedModel model, OpenAiServerOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        IPAddress address = CheckBinding(options);
        ApiKey? key = string.IsNullOrEmpty(options.ApiKey) ? null : new ApiKey(options.ApiKey);
        AdapterRoot? root = options.AdapterRoot is null ? null : new AdapterRoot(options.AdapterRoot);

        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [], ContentRootPath = AppContext.BaseDirectory });
        builder.Logging.ClearProviders();
        if (options.Verbose) builder.Logging.AddSimpleConsole(o => o.SingleLine = true);
        builder.Services.AddSingleton<IHostLifetime, EmbeddedLifetime>();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Listen(address, options.Port);
            k.Limits.MaxRequestBodySize = options.MaxBodyBytes;
            k.AddServerHeader = false;
        });
        WebApplication app = builder.Build();
        var generation = new GenerationEndpoints(model, options);
        var adapters = new AdapterEndpoints(model, options, root);

        // Outermost: count every answer by endpoint and status; turn any failure into OpenAI's error object.
        app.Use(async (context, next) =>
        {
            try
            {
                await next(context).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
            {
                // The client went away; its request was cancelled and there is no one to answer.
            }
            catch (Exception e) when (!context.Response.HasStarted)
            {
                await OpenAiError.From(e).WriteAsync(context).ConfigureAwait(false);
            }
            string path = context.Request.Path.Value ?? "";
            model.Metrics.Request(Endpoints.Contains(path) ? path : "other", context.Response.StatusCode);
        });
        app.Use(async (context, next) =>
        {
            if (key is not null && context.Request.Path != "/health" && !key.Accepts(context.Request.Headers.Authorization))
            {
                await new OpenAiError(401, "Incorrect or missing API key: send 'Authorization: Bearer KEY' with the server's key.", "authentication_error", null, "invalid_api_key")
                    .WriteAsync(context).ConfigureAwait(false);
                return;
            }
            await next(context).ConfigureAwait(false);
        });

        app.MapGet("/health", (HttpContext c) => { c.Response.StatusCode = 200; return Task.CompletedTask; });
        app.MapGet("/metrics", async (HttpContext c) =>
        {
            c.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
            await model.Metrics.WriteAsync(c.Response.Body, c.RequestAborted).ConfigureAwait(false);
        });
        app.MapGet("/v1/models", adapters.ModelsAsync);
        app.MapPost("/v1/completions", generation.CompletionsAsync);
        app.MapPost("/v1/chat/completions", generation.ChatCompletionsAsync);
        app.MapPost("/v1/load_lora_adapter", adapters.LoadAsync);
        app.MapPost("/v1/unload_lora_adapter", adapters.UnloadAsync);
        app.MapFallback((HttpContext c) => new OpenAiError(404, $"{c.Request.Method} {c.Request.Path} is not an endpoint of this server (see /v1/models, /v1/completions, /v1/chat/completions).", "invalid_request_error", null, "not_found").WriteAsync(c));

        try
        {
            await app.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException)
        {
            await app.DisposeAsync().ConfigureAwait(false);
            throw new IOException($"Cannot listen on {options.Host}:{options.Port}: {e.Message}", e);
        }
        string bound = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new OpenAiServer(app, model, new Uri(bound));
    }

    /// <summary>Completes when the server stops (<paramref name="cancellationToken"/> stops it).</summary>
    public Task WaitForShutdownAsync(CancellationToken cancellationToken) => _app.WaitForShutdownAsync(cancellationToken);

    /// <summary>Stops listening (requests in flight get a moment to end) and frees the server; the model stays (its owner disposes it).</summary>
    public async ValueTask DisposeAsync()
    {
        using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        await _app.StopAsync(grace.Token).ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
    }
}
