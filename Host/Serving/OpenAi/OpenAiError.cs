using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using PeftHost.Abstractions.Config;
using PeftHost.Engine.Plugins;
using PeftHost.Models;
using PeftHost.Serving.Completions;
using PeftHost.Serving.Scheduling;

namespace PeftHost.Serving.OpenAi;

/// <summary>
/// OpenAI's error object, <c>{"error": {"message", "type", "param", "code"}}</c>, with its HTTP status: what every
/// failure answers (never a stack trace). <see cref="From"/> maps the engine's documented exceptions to it.
/// </summary>
/// <param name="Status">The HTTP status.</param>
/// <param name="Message">What is wrong.</param>
/// <param name="Type">OpenAI's error type (invalid_request_error, authentication_error, rate_limit_error, server_error).</param>
/// <param name="Param">The request field at fault, or null.</param>
/// <param name="Code">OpenAI's error code, or null.</param>
public sealed record OpenAiError(int Status, string Message, string Type, string? Param = null, string? Code = null)
{
    /// <summary>The JSON body.</summary>
    public JsonObject ToJson() => new()
    {
        ["error"] = new JsonObject { ["message"] = Message, ["type"] = Type, ["param"] = Param, ["code"] = Code },
    };

    /// <summary>A 400 invalid_request_error.</summary>
    public static OpenAiError BadRequest(string message, string? param = null, string? code = null) => new(400, message, "invalid_request_error", param, code);

    /// <summary>The error an exception from handling a request means.</summary>
    public static OpenAiError From(Exception e) => e switch
    {
        ServingRequestException r => new(r.Status, r.Message, "invalid_request_error", r.Param, r.Code),
        QueueFullException q => new(429, q.Message, "rate_limit_error", null, "rate_limit_exceeded"),
        KeyNotFoundException k => new(404, k.Message, "invalid_request_error", "model", "model_not_found"),
        BadHttpRequestException { StatusCode: 413 } => new(413, "The request body is larger than the server accepts (--max-body).", "invalid_request_error", null, "request_too_large"),
        BadHttpRequestException b => new(b.StatusCode, b.Message, "invalid_request_error"),
        NotSupportedException n => new(400, n.Message, "invalid_request_error", null, "unsupported"),
        ModelInputException m => new(400, m.Message, "invalid_request_error", m.ParamName),
        TunerConfigException t => new(400, t.Message, "invalid_request_error", "lora_path"),
        InvalidDataException d => new(400, d.Message, "invalid_request_error"),
        ArgumentException a => new(400, a.ParamName is { } p ? a.Message.Replace($" (Parameter '{p}')", "", StringComparison.Ordinal) : a.Message, "invalid_request_error", a.ParamName),
        PluginFaultException p => new(500, p.Message, "server_error", null, "plugin_fault"),
        _ => new(500, $"The server failed on this request ({e.GetType().Name}): {e.Message}", "server_error"),
    };

    /// <summary>Writes the error as the response (status, JSON body; 429 also says when to retry).</summary>
    public async Task WriteAsync(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        HttpResponse response = context.Response;
        response.StatusCode = Status;
        if (Status == 429) response.Headers.RetryAfter = "1";
        response.ContentType = "application/json";
        await response.WriteAsync(ToJson().ToJsonString(OpenAiJson.Options), context.RequestAborted).ConfigureAwait(false);
    }
}
