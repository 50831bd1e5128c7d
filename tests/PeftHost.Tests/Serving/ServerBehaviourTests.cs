using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Xunit;

namespace PeftHost.Tests.Serving;

/// <summary>The wire format as vLLM writes it (completions, SSE chunks, [DONE], usage), adapters at run time, disconnects, metrics.</summary>
public sealed class ServerBehaviourTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static async Task<List<JsonElement>> Events(HttpResponseMessage response)
    {
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        string body = await response.Content.ReadAsStringAsync(Ct);
        string[] blocks = body.Split("\n\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.All(blocks, b => Assert.StartsWith("data: ", b));
        Assert.Equal("data: [DONE]", blocks[^1]);
        return [.. blocks[..^1].Select(b => JsonDocument.Parse(b["data: ".Length..]).RootElement)];
    }

    [Fact]
    public async Task Completions_default_to_16_tokens_and_stream_openai_chunks_ending_with_done()
    {
        using HttpClient http = fixture.Http();
        IReadOnlyList<int> prompt = fixture.Models.Encode("the cat");
        (string expected, int tokens) = fixture.Models.Reference("chat", prompt, 16);
        var body = new JsonObject { ["model"] = "chat", ["prompt"] = "the cat", ["temperature"] = 0 };
        using HttpResponseMessage whole = await http.PostAsync("/v1/completions", ServerFixture.Json(body), Ct);
        JsonElement r = JsonDocument.Parse(await whole.Content.ReadAsStringAsync(Ct)).RootElement;
        Assert.Equal("text_completion", r.GetProperty("object").GetString());
        Assert.StartsWith("cmpl-", r.GetProperty("id").GetString());
        Assert.Equal("chat", r.GetProperty("model").GetString());
        JsonElement choice = r.GetProperty("choices")[0];
        Assert.Equal(expected, choice.GetProperty("text").GetString());
        Assert.Equal(tokens == 16 ? "length" : "stop", choice.GetProperty("finish_reason").GetString());
        Assert.Equal(prompt.Count, r.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(tokens, r.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        Assert.Equal(prompt.Count + tokens, r.GetProperty("usage").GetProperty("total_tokens").GetInt32());

        body["stream"] = true;
        body["stream_options"] = new JsonObject { ["include_usage"] = true };
        using HttpResponseMessage streamed = await http.PostAsync("/v1/completions", ServerFixture.Json(body), Ct);
        List<JsonElement> events = await Events(streamed);
        Assert.All(events, e => Assert.Equal("text_completion", e.GetProperty("object").GetString()));
        Assert.Equal(expected, string.Concat(events.SelectMany(e => e.GetProperty("choices").EnumerateArray()).Select(c => c.GetProperty("text").GetString())));
        JsonElement last = events[^1];
        Assert.Equal(0, last.GetProperty("choices").GetArrayLength());
        Assert.Equal(tokens, last.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        Assert.All(events[..^1], e => Assert.Equal(JsonValueKind.Null, e.GetProperty("usage").ValueKind));
        Assert.Equal(choice.GetProperty("finish_reason").GetString(), events[^2].GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        Assert.Single(events.Select(e => e.GetProperty("id").GetString()).Distinct());
    }

    [Fact]
    public async Task Chat_chunks_start_with_the_role_and_end_with_the_finish_reason()
    {
        using HttpClient http = fixture.Http();
        var body = new JsonObject
        {
            ["model"] = "soft", ["max_tokens"] = 6, ["temperature"] = 0, ["stream"] = true,
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = new JsonArray(new JsonObject { ["type"] = "text", ["text"] = "hi" }) }),
        };
        using HttpResponseMessage response = await http.PostAsync("/v1/chat/completions", ServerFixture.Json(body), Ct);
        List<JsonElement> events = await Events(response);
        Assert.All(events, e => Assert.Equal("chat.completion.chunk", e.GetProperty("object").GetString()));
        JsonElement firstDelta = events[0].GetProperty("choices")[0].GetProperty("delta");
        Assert.Equal("assistant", firstDelta.GetProperty("role").GetString());
        Assert.Equal("", firstDelta.GetProperty("content").GetString());
        Assert.False(events[0].TryGetProperty("usage", out _));
        JsonElement end = events[^1].GetProperty("choices")[0];
        Assert.Empty(end.GetProperty("delta").EnumerateObject());
        (string expected, int tokens) = fixture.Models.Reference("soft", fixture.Models.Chat("hi"), 6);
        Assert.Equal(tokens == 6 ? "length" : "stop", end.GetProperty("finish_reason").GetString());
        Assert.Equal(expected, string.Concat(events.Select(e => e.GetProperty("choices")[0].GetProperty("delta")).Where(d => d.TryGetProperty("content", out _)).Select(d => d.GetProperty("content").GetString())));
    }

    [Fact]
    public async Task Adapters_load_under_the_root_only_hotswap_and_unload()
    {
        using HttpClient http = fixture.Http();
        async Task<(HttpStatusCode, string)> Post(string path, JsonObject body)
        {
            using HttpResponseMessage r = await http.PostAsync(path, ServerFixture.Json(body), Ct);
            return (r.StatusCode, await r.Content.ReadAsStringAsync(Ct));
        }
        (HttpStatusCode status, string text) = await Post("/v1/load_lora_adapter", new JsonObject { ["lora_name"] = "late", ["lora_path"] = fixture.Models.Folder("sql-v2") });
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("Success: LoRA adapter 'late' added successfully.", text);
        IReadOnlyList<int> prompt = fixture.Models.Encode("x y");
        Assert.Equal(fixture.Models.Reference("sql-v2", prompt, 8).Text, await Complete(http, "late", "x y", 8));

        // Outside the root, through a link, not an adapter folder, an existing name: refused, nothing changes.
        (status, text) = await Post("/v1/load_lora_adapter", new JsonObject { ["lora_name"] = "evil", ["lora_path"] = fixture.Models.Model });
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("is outside the adapter root", text);
        (status, text) = await Post("/v1/load_lora_adapter", new JsonObject { ["lora_name"] = "evil", ["lora_path"] = Path.Combine(fixture.Models.AdapterRoot, "..", "tiny-llama") });
        Assert.Contains("is outside the adapter root", text);
        string link = Path.Combine(fixture.Models.AdapterRoot, "link");
        if (!Directory.Exists(link)) Directory.CreateSymbolicLink(link, fixture.Models.Folder("chat"));
        (status, text) = await Post("/v1/load_lora_adapter", new JsonObject { ["lora_name"] = "evil", ["lora_path"] = "link" });
        Assert.Contains("symbolic link", text);
        (status, text) = await Post("/v1/load_lora_adapter", new JsonObject { ["lora_name"] = "late", ["lora_path"] = "chat" });
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("has already been loaded", text);
        (status, text) = await Post("/v1/load_lora_adapter", new JsonObject { ["lora_name"] = "tiny-llama", ["lora_path"] = "chat" });
        Assert.Contains("is the base model's served name", JsonDocument.Parse(text).RootElement.GetProperty("error").GetProperty("message").GetString());

        // A hotswap to another rank and targets replaces the adapter whole; it then serves the new weights.
        (status, text) = await Post("/v1/load_lora_adapter", new JsonObject { ["lora_name"] = "late", ["lora_path"] = "chat-r8", ["hotswap"] = true });
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("Success: LoRA adapter 'late' hotswapped successfully.", text);
        Assert.Equal(fixture.Models.Reference("chat-r8", prompt, 8).Text, await Complete(http, "late", "x y", 8));

        (status, _) = await Post("/v1/unload_lora_adapter", new JsonObject { ["lora_name"] = "late" });
        Assert.Equal(HttpStatusCode.OK, status);
        (status, text) = await Post("/v1/unload_lora_adapter", new JsonObject { ["lora_name"] = "late" });
        Assert.Equal(HttpStatusCode.NotFound, status);
        Assert.Contains("model_not_found", text);
        (status, _) = await Post("/v1/completions", new JsonObject { ["model"] = "late", ["prompt"] = "x" });
        Assert.Equal(HttpStatusCode.NotFound, status);
    }

    [Fact]
    public async Task A_client_that_disconnects_frees_its_row_at_once()
    {
        using HttpClient http = fixture.Http();
        var body = new JsonObject { ["model"] = "sql", ["prompt"] = "a", ["max_tokens"] = 120, ["ignore_eos"] = true, ["stream"] = true };
        using (var request = new HttpRequestMessage(HttpMethod.Post, "/v1/completions") { Content = ServerFixture.Json(body) })
        using (HttpResponseMessage response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, Ct))
        {
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(Ct));
            Assert.StartsWith("data: ", await reader.ReadLineAsync(Ct));
        }
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (fixture.Served.Scheduler.Running > 0 && waited.Elapsed < TimeSpan.FromSeconds(10)) await Task.Delay(5, Ct);
        Assert.Equal(0, fixture.Served.Scheduler.Running);
        Assert.Equal(0, fixture.Served.Scheduler.Waiting);
    }

    [Fact]
    public async Task Metrics_are_prometheus_text_with_requests_tokens_queue_batch_and_latency()
    {
        using HttpClient http = fixture.Http();
        await Complete(http, "sql", "metrics", 3);
        using HttpResponseMessage response = await http.GetAsync("/metrics", Ct);
        Assert.StartsWith("text/plain", response.Content.Headers.ContentType?.ToString());
        string text = await response.Content.ReadAsStringAsync(Ct);
        foreach (string metric in new[]
                 {
                     "# TYPE pefthost_requests_total counter", "pefthost_requests_total{endpoint=\"/v1/completions\",status=\"200\"}",
                     "# TYPE pefthost_generation_tokens_total counter", "# TYPE pefthost_prompt_tokens_total counter", "# TYPE pefthost_queue_depth gauge",
                     "# TYPE pefthost_requests_running gauge", "# TYPE pefthost_batch_size histogram", "pefthost_time_to_first_token_seconds_bucket",
                     "pefthost_request_latency_seconds_count", "pefthost_queue_time_seconds_sum",
                 })
            Assert.Contains(metric, text);
        double generated = double.Parse(text.Split('\n').First(l => l.StartsWith("pefthost_generation_tokens_total ", StringComparison.Ordinal)).Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(generated >= 3);
    }

    internal static async Task<string> Complete(HttpClient http, string model, string prompt, int maxTokens)
    {
        var body = new JsonObject { ["model"] = model, ["prompt"] = prompt, ["max_tokens"] = maxTokens, ["temperature"] = 0 };
        using HttpResponseMessage r = await http.PostAsync("/v1/completions", ServerFixture.Json(body), Ct);
        string text = await r.Content.ReadAsStringAsync(Ct);
        Assert.True(r.IsSuccessStatusCode, text);
        return JsonDocument.Parse(text).RootElement.GetProperty("choices")[0].GetProperty("text").GetString()!;
    }
}
