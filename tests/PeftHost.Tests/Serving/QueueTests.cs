using System.Net;
using System.Text.Json.Nodes;
using PeftHost.Engine.Plugins;
using PeftHost.Serving;
using PeftHost.Serving.OpenAi;
using PeftHost.Serving.Scheduling;
using Xunit;

namespace PeftHost.Tests.Serving;

/// <summary>A full queue answers 429 with Retry-After; the requests it took complete.</summary>
public sealed class QueueTests
{
    [Fact]
    public async Task A_full_queue_is_429_with_retry_after()
    {
        using var models = new ServingModels();
        using var catalog = new PluginCatalog(new PluginCatalogOptions { PluginsDirectory = models.Plugins, HotReload = false });
        using ServedModel served = ServedModel.Open(new ServedModelOptions { ModelFolder = models.Model, MaxBatch = 1, MaxQueue = 1 }, catalog);
        await using OpenAiServer server = await OpenAiServer.StartAsync(served, new OpenAiServerOptions { Port = 0 }, TestContext.Current.CancellationToken);
        using var http = new HttpClient { BaseAddress = server.Address };
        var body = new JsonObject { ["model"] = "tiny-llama", ["prompt"] = "a", ["max_tokens"] = 120, ["ignore_eos"] = true };
        // One runs, one waits; the others find the queue full (the first takes 120 decoding steps).
        HttpResponseMessage[] responses = await Task.WhenAll(Enumerable.Range(0, 6).Select(_ => http.PostAsync("/v1/completions", ServerFixture.Json(body), TestContext.Current.CancellationToken)));
        HttpResponseMessage[] refused = [.. responses.Where(r => r.StatusCode == HttpStatusCode.TooManyRequests)];
        Assert.NotEmpty(refused);
        Assert.All(refused, r => Assert.Equal(TimeSpan.FromSeconds(1), r.Headers.RetryAfter?.Delta));
        Assert.Contains("rate_limit_exceeded", await refused[0].Content.ReadAsStringAsync(TestContext.Current.CancellationToken));
        Assert.All(responses.Where(r => r.StatusCode != HttpStatusCode.TooManyRequests), r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        Assert.Throws<QueueFullException>(() =>
        {
            // The same bound in process: the scheduler refuses past it.
            for (int i = 0; i < 3; i++) served.Scheduler.Submit([1], null, new PeftHost.Models.Generation.GenerationOptions { MaxNewTokens = 120 }, TestContext.Current.CancellationToken);
        });
        foreach (HttpResponseMessage r in responses) r.Dispose();
    }
}
