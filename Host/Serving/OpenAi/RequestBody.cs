using System.Text.Json;
using Microsoft.AspNetCore.Http;
using PeftHost.Serving.Completions;

namespace PeftHost.Serving.OpenAi;

/// <summary>A request's JSON body, read within the server's size limit, and typed reads of its fields that name the field when it is wrong.</summary>
public sealed class RequestBody : IDisposable
{
    private readonly JsonDocument _document;

    private RequestBody(JsonDocument document) => _document = document;

    /// <summary>The body's top-level object.</summary>
    public JsonElement Root => _document.RootElement;

    /// <summary>Reads and parses the body (at most <paramref name="maxBytes"/>).</summary>
    /// <exception cref="ServingRequestException">The body is too large (413), not JSON, or not a JSON object (400).</exception>
    public static async Task<RequestBody> ReadAsync(HttpContext context, long maxBytes)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (context.Request.ContentLength > maxBytes) throw TooLarge(maxBytes);
        using var buffer = new MemoryStream();
        byte[] chunk = new byte[16384];
        while (true)
        {
            int n;
            try
            {
                n = await context.Request.Body.ReadAsync(chunk, context.RequestAborted).ConfigureAwait(false);
            }
            catch (BadHttpRequestException e) when (e.StatusCode == 413)
            {
                throw TooLarge(maxBytes);
            }
            if (n == 0) break;
            if (buffer.Length + n > maxBytes) throw TooLarge(maxBytes);
            buffer.Write(chunk, 0, n);
        }
        if (buffer.Length == 0) throw new ServingRequestException("The request body is empty; expected a JSON object.");
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(buffer.ToArray(), new JsonDocumentOptions { MaxDepth = 64 });
        }
        catch (JsonException e)
        {
            throw new ServingRequestException($"The request body is not valid JSON: {e.Message}", null, "invalid_json");
        }
        if (document.RootElement.ValueKind != JsonValueKind.Object)
        {
            string kind = Kind(document.RootElement);
            document.Dispose();
            throw new ServingRequestException($"The request body is a JSON {kind}; expected an object.", null, "invalid_json");
        }
        return new RequestBody(document);
    }

    private static ServingRequestException TooLarge(long maxBytes) =>
        new($"The request body is larger than the server accepts ({maxBytes} bytes).", null, "request_too_large", 413);

    /// <summary>Whether the field is present and not null.</summary>
    public bool Has(string name) => Root.TryGetProperty(name, out JsonElement v) && v.ValueKind != JsonValueKind.Null;

    /// <summary>The field's value when present and not null.</summary>
    public JsonElement? Get(string name) => Root.TryGetProperty(name, out JsonElement v) && v.ValueKind != JsonValueKind.Null ? v : null;

    /// <summary>A required string.</summary>
    public string RequiredString(string name) => String(name) ?? throw new ServingRequestException($"'{name}' is required.", name);

    /// <summary>An optional string.</summary>
    public string? String(string name) => Get(name) is { } v
        ? v.ValueKind == JsonValueKind.String ? v.GetString() : throw WrongType(name, v, "a string")
        : null;

    /// <summary>An optional boolean.</summary>
    public bool? Bool(string name) => Get(name) is { } v
        ? v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : throw WrongType(name, v, "a boolean")
        : null;

    /// <summary>An optional number.</summary>
    public double? Number(string name) => Get(name) is { } v
        ? v.ValueKind == JsonValueKind.Number ? v.GetDouble() : throw WrongType(name, v, "a number")
        : null;

    /// <summary>An optional integer (JSON numbers without a fraction that fit 64 bits).</summary>
    public long? Integer(string name) => Get(name) is { } v
        ? v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out long i) ? i : throw WrongType(name, v, "an integer")
        : null;

    /// <summary>An optional integer that fits 32 bits.</summary>
    public int? Int32(string name) => Integer(name) is long i
        ? i is >= int.MinValue and <= int.MaxValue ? (int)i : throw new ServingRequestException($"'{name}' is {i}, out of range.", name)
        : null;

    /// <summary>A string or an array of strings (OpenAI's <c>stop</c>).</summary>
    public IReadOnlyList<string>? Strings(string name)
    {
        if (Get(name) is not { } v) return null;
        if (v.ValueKind == JsonValueKind.String) return [v.GetString()!];
        if (v.ValueKind != JsonValueKind.Array) throw WrongType(name, v, "a string or an array of strings");
        var list = new List<string>();
        foreach (JsonElement e in v.EnumerateArray())
        {
            if (e.ValueKind != JsonValueKind.String) throw new ServingRequestException($"'{name}' holds a {Kind(e)}; expected strings only.", name);
            list.Add(e.GetString()!);
        }
        return list;
    }

    /// <summary>The JSON kind of a value, as an error message names it.</summary>
    public static string Kind(JsonElement v) => v.ValueKind switch
    {
        JsonValueKind.String => "string",
        JsonValueKind.Number => "number",
        JsonValueKind.True or JsonValueKind.False => "boolean",
        JsonValueKind.Array => "array",
        JsonValueKind.Object => "object",
        _ => "null",
    };

    /// <summary>The error for a field of the wrong JSON type.</summary>
    public static ServingRequestException WrongType(string name, JsonElement v, string expected) =>
        new($"'{name}' is a {Kind(v)}; expected {expected}.", name, "invalid_type");

    /// <inheritdoc/>
    public void Dispose() => _document.Dispose();
}
