using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using PeftHost.Engine.Inference;
using PeftHost.Engine.Inference.Backends;
using PeftHost.Formats.Gguf;
using PeftHost.Serving;
using PeftHost.Serving.OpenAi;
using PeftHost.Tests.Support;
using Xunit;

namespace PeftHost.Tests.Serving;

/// <summary>
/// `--backend llama`: llama.cpp (f32 GGUF exported from the tiny Llama, LoRA as GGUF-LoRA) behind the same server.
/// Concurrent requests of several adapters are grouped by adapter and each gets the greedy completion torch gives it
/// alone; a LoRA adapter loads at run time; a method llama.cpp could only merge into the shared base is refused.
/// </summary>
public sealed class LlamaServingTests : IAsyncLifetime
{
    private const int MaxTokens = 10;
    private readonly ServingModels _models = new();
    private readonly ScratchFolder _cache = new();
    private ServedModel? _served;
    private OpenAiServer? _server;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        _served = ServedModel.Open(new ServedModelOptions
        {
            ModelFolder = _models.Model, Backend = InferenceBackendKind.Llama, Quant = GgmlType.F32, CacheDirectory = _cache.Path,
            PluginsFolder = _models.Plugins, Threads = 1,
            Adapters = [new AdapterSpec("sql", _models.Folder("sql")), new AdapterSpec("chat", _models.Folder("chat"))],
        });
        _server = await OpenAiServer.StartAsync(_served, new OpenAiServerOptions { Port = 0, AdapterRoot = _models.AdapterRoot }, Ct);
    }

    public async ValueTask DisposeAsync()
    {
        if (_server is not null) await _server.DisposeAsync();
        _served?.Dispose();
        _cache.Dispose();
        _models.Dispose();
    }

    private HttpClient Http() => new() { BaseAddress = _server!.Address, Timeout = TimeSpan.FromMinutes(3) };

    private static async Task<(HttpStatusCode Status, string Body)> Post(HttpClient http, string path, JsonObject body)
    {
        using HttpResponseMessage r = await http.PostAsync(path, ServerFixture.Json(body), Ct);
        return (r.StatusCode, await r.Content.ReadAsStringAsync(Ct));
    }

    private static async Task<string> Complete(HttpClient http, string model, string prompt)
    {
        (HttpStatusCode status, string body) = await Post(http, "/v1/completions", new JsonObject { ["model"] = model, ["prompt"] = prompt, ["max_tokens"] = MaxTokens, ["temperature"] = 0 });
        Assert.True(status == HttpStatusCode.OK, $"{model} '{prompt}': {(int)status} {body}");
        return JsonDocument.Parse(body).RootElement.GetProperty("choices")[0].GetProperty("text").GetString()!;
    }

    [Fact]
    public async Task Concurrent_requests_of_several_adapters_each_equal_torch_served_alone()
    {
        string[] prompts = ["the quick fox", "serving", "a b c d"];
        string?[] adapters = ["sql", null, "chat"];
        var jobs = (from p in prompts from a in adapters select (Prompt: p, Adapter: a)).ToList();
        using HttpClient http = Http();
        string[] texts = await Task.WhenAll(jobs.Select(j => Complete(http, j.Adapter ?? "tiny-llama", j.Prompt)));
        for (int i = 0; i < jobs.Count; i++)
        {
            string expected = _models.Reference(jobs[i].Adapter, _models.Encode(jobs[i].Prompt), MaxTokens).Text;
            Assert.True(expected == texts[i], $"{jobs[i].Adapter ?? "base"} on '{jobs[i].Prompt}': llama '{texts[i]}', torch '{expected}'");
        }
        Assert.Equal(0, _served!.Scheduler.Running);
    }

    [Fact]
    public async Task A_lora_loads_at_run_time_and_a_method_llama_cpp_would_merge_is_refused()
    {
        using HttpClient http = Http();
        (HttpStatusCode status, string body) = await Post(http, "/v1/load_lora_adapter", new JsonObject { ["lora_name"] = "late", ["lora_path"] = "sql-v2" });
        Assert.True(status == HttpStatusCode.OK, body);
        Assert.Equal(_models.Reference("sql-v2", _models.Encode("x y"), MaxTokens).Text, await Complete(http, "late", "x y"));

        (status, body) = await Post(http, "/v1/load_lora_adapter", new JsonObject { ["lora_name"] = "scaled", ["lora_path"] = "ia3" });
        Assert.Equal(HttpStatusCode.BadRequest, status);
        JsonElement error = JsonDocument.Parse(body).RootElement.GetProperty("error");
        Assert.Equal("unsupported", error.GetProperty("code").GetString());
        Assert.Contains("--backend torch", error.GetProperty("message").GetString());
        Assert.DoesNotContain("scaled", _served!.Adapters);

        (status, _) = await Post(http, "/v1/unload_lora_adapter", new JsonObject { ["lora_name"] = "late" });
        Assert.Equal(HttpStatusCode.OK, status);
        (status, _) = await Post(http, "/v1/completions", new JsonObject { ["model"] = "late", ["prompt"] = "x" });
        Assert.Equal(HttpStatusCode.NotFound, status);
    }
}
