using System.Text.Encodings.Web;
using System.Text.Json;

namespace PeftHost.Serving.OpenAi;

/// <summary>How the server writes JSON: compact, and non-ASCII text and quotes as themselves (JSON bodies, not HTML: nothing needs escaping beyond JSON's own rules).</summary>
public static class OpenAiJson
{
    /// <summary>The serializer options of every response body and stream event.</summary>
    public static JsonSerializerOptions Options { get; } = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
}
