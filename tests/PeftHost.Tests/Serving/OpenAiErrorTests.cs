using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Xunit;

namespace PeftHost.Tests.Serving;

/// <summary>Every refusal is OpenAI's error object with its status (400, 401, 404, 413, 429), naming the field, never a stack trace.</summary>
public sealed class OpenAiErrorTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private async Task<(HttpStatusCode Status, JsonElement Error, HttpResponseMessage Response)> Post(string path, HttpContent content, string? key = ServerFixture.Key)
    {
        using HttpClient http = fixture.Http(key);
        HttpResponseMessage response = await http.PostAsync(path, content, TestContext.Current.CancellationToken);
        string body = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        Assert.DoesNotContain("   at ", body);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        JsonElement error = JsonDocument.Parse(body).RootElement.GetProperty("error");
        foreach (string field in new[] { "message", "type", "param", "code" }) Assert.True(error.TryGetProperty(field, out _), $"error object without '{field}': {body}");
        return (response.StatusCode, error, response);
    }

    private static JsonObject Completion(Action<JsonObject>? change = null)
    {
        var body = new JsonObject { ["model"] = "sql", ["prompt"] = "hello", ["max_tokens"] = 4, ["temperature"] = 0 };
        change?.Invoke(body);
        return body;
    }

    private Task<(HttpStatusCode, JsonElement, HttpResponseMessage)> Completions(Action<JsonObject> change) => Post("/v1/completions", ServerFixture.Json(Completion(change)));

    [Fact]
    public async Task Malformed_json_and_wrong_types_are_400_naming_the_field()
    {
        (HttpStatusCode status, JsonElement error, _) = await Post("/v1/completions", new StringContent("{\"model\": \"sql\", \"prompt\": ", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.StartsWith("The request body is not valid JSON", error.GetProperty("message").GetString());
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());

        (status, error, _) = await Post("/v1/completions", new StringContent("[1, 2]", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("expected an object", error.GetProperty("message").GetString());

        (status, error, _) = await Completions(b => b["temperature"] = "hot");
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("temperature", error.GetProperty("param").GetString());
        Assert.Equal("'temperature' is a string; expected a number.", error.GetProperty("message").GetString());

        (status, error, _) = await Completions(b => b.Remove("model"));
        Assert.Equal("'model' is required.", error.GetProperty("message").GetString());
    }

    [Theory]
    [InlineData("temperature", 2.5, "'temperature' is 2.5; expected a number from 0 to 2 (0 = greedy).")]
    [InlineData("temperature", -1, "'temperature' is -1; expected a number from 0 to 2 (0 = greedy).")]
    [InlineData("top_p", 0, "'top_p' is 0; expected a number in (0, 1].")]
    [InlineData("top_p", 1.5, "'top_p' is 1.5; expected a number in (0, 1].")]
    [InlineData("max_tokens", 0, "'max_tokens' is 0; expected at least 1.")]
    [InlineData("top_k", -2, "'top_k' is -2; expected -1 or 0 (off) or a positive number of tokens.")]
    [InlineData("repetition_penalty", 0, "'repetition_penalty' is 0; expected a positive number (1 = off).")]
    public async Task Invalid_sampling_values_are_400(string field, double value, string message)
    {
        (HttpStatusCode status, JsonElement error, _) = await Completions(b => b[field] = value);
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal(message, error.GetProperty("message").GetString());
        Assert.Equal(field, error.GetProperty("param").GetString());
    }

    [Fact]
    public async Task What_is_not_implemented_is_400_unsupported()
    {
        foreach ((string field, JsonNode value) in new (string, JsonNode)[] { ("n", 2), ("logprobs", 3), ("echo", true), ("best_of", 2), ("frequency_penalty", 0.5) })
        {
            (HttpStatusCode status, JsonElement error, _) = await Completions(b => b[field] = value.DeepClone());
            Assert.Equal(HttpStatusCode.BadRequest, status);
            Assert.Equal("unsupported", error.GetProperty("code").GetString());
            Assert.Equal(field, error.GetProperty("param").GetString());
        }
        var chat = new JsonObject
        {
            ["model"] = "sql", ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "hi" }),
            ["tools"] = new JsonArray(new JsonObject { ["type"] = "function", ["function"] = new JsonObject { ["name"] = "f" } }),
        };
        (HttpStatusCode s, JsonElement e, _) = await Post("/v1/chat/completions", ServerFixture.Json(chat));
        Assert.Equal(HttpStatusCode.BadRequest, s);
        Assert.Equal("unsupported", e.GetProperty("code").GetString());
        Assert.Equal("tools", e.GetProperty("param").GetString());
        chat.Remove("tools");
        chat["logprobs"] = true;
        (s, e, _) = await Post("/v1/chat/completions", ServerFixture.Json(chat));
        Assert.Equal("logprobs", e.GetProperty("param").GetString());
        chat.Remove("logprobs");
        ((JsonObject)chat["messages"]![0]!)["content"] = new JsonArray(new JsonObject { ["type"] = "image_url", ["image_url"] = new JsonObject { ["url"] = "x" } });
        (s, e, _) = await Post("/v1/chat/completions", ServerFixture.Json(chat));
        Assert.Equal("unsupported", e.GetProperty("code").GetString());
        Assert.Contains("image_url", e.GetProperty("message").GetString());
    }

    [Fact]
    public async Task An_unknown_model_is_404_and_a_prompt_longer_than_the_context_400()
    {
        (HttpStatusCode status, JsonElement error, _) = await Completions(b => b["model"] = "missing");
        Assert.Equal(HttpStatusCode.NotFound, status);
        Assert.Equal("model_not_found", error.GetProperty("code").GetString());
        Assert.Equal("model", error.GetProperty("param").GetString());

        // The tiny model has 128 positions; its byte-level tokenizer makes one token per character.
        (status, error, _) = await Completions(b => b["prompt"] = new string('a', 200));
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("context_length_exceeded", error.GetProperty("code").GetString());
        Assert.StartsWith("This model's maximum context length is 128 tokens. However, your prompt has 200 tokens", error.GetProperty("message").GetString());

        (status, error, _) = await Completions(b => { b["prompt"] = new string('a', 100); b["max_tokens"] = 40; });
        Assert.Equal("context_length_exceeded", error.GetProperty("code").GetString());
        Assert.Contains("you requested 140 tokens (100 in the prompt, 40 for the completion)", error.GetProperty("message").GetString());
        // The prompt-tuning adapter's 4 virtual tokens count too.
        (status, error, _) = await Completions(b => { b["model"] = "soft"; b["prompt"] = new string('a', 100); b["max_tokens"] = 25; });
        Assert.Contains("100 in the prompt and 4 virtual tokens of the adapter", error.GetProperty("message").GetString());

        (status, error, _) = await Completions(b => b["prompt"] = new JsonArray(1, 2, 999));
        Assert.Equal("'prompt'[2] is token id 999, outside the model's vocabulary [0, 256).", error.GetProperty("message").GetString());
    }

    [Fact]
    public async Task An_oversized_body_is_413()
    {
        // The fixture's limit is 64 KiB.
        (HttpStatusCode status, JsonElement error, _) = await Completions(b => b["prompt"] = new string('x', 100_000));
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, status);
        Assert.Equal("request_too_large", error.GetProperty("code").GetString());
    }

    [Fact]
    public async Task The_key_is_required_everywhere_but_health()
    {
        (HttpStatusCode status, JsonElement error, _) = await Post("/v1/completions", ServerFixture.Json(Completion()), key: null);
        Assert.Equal(HttpStatusCode.Unauthorized, status);
        Assert.Equal("invalid_api_key", error.GetProperty("code").GetString());
        (status, _, _) = await Post("/v1/completions", ServerFixture.Json(Completion()), key: ServerFixture.Key + "x");
        Assert.Equal(HttpStatusCode.Unauthorized, status);
        using HttpClient anonymous = fixture.Http(key: null);
        Assert.Equal(HttpStatusCode.OK, (await anonymous.GetAsync("/health", TestContext.Current.CancellationToken)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync("/v1/models", TestContext.Current.CancellationToken)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync("/metrics", TestContext.Current.CancellationToken)).StatusCode);
    }

    [Fact]
    public async Task Unknown_endpoints_are_404_error_objects()
    {
        using HttpClient http = fixture.Http();
        HttpResponseMessage response = await http.GetAsync("/v1/engines", TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        JsonElement error = JsonDocument.Parse(await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken)).RootElement.GetProperty("error");
        Assert.Equal("not_found", error.GetProperty("code").GetString());
    }
}
