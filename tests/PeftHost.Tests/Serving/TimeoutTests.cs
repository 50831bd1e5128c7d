using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using PeftHost.Engine.Plugins;
using PeftHost.Serving;
using PeftHost.Serving.OpenAi;
using Xunit;

namespace PeftHost.Tests.Serving;

/// <summary>A request that runs past --request-timeout is ended with OpenAI's error object (408) and frees its row.</summary>
public sealed class TimeoutTests
{
    [Fact]
    public async Task A_request_past_the_timeout_is_408_and_frees_its_row()
    {
        using var models = new ServingModels();
        using var catalog = new PluginCatalog(new PluginCatalogOptions { PluginsDirectory = models.Plugins, HotReload = false });
        using ServedModel served = ServedModel.Open(new ServedModelOptions { ModelFolder = models.Model, MaxBatch = 2 }, catalog);
        // 10 ms cannot hold 120 decoding steps.
        await using OpenAiServer server = await OpenAiServer.StartAsync(served, new OpenAiServerOptions { Port = 0, RequestTimeoutSeconds = 0.01 }, TestContext.Current.CancellationToken);
        using var http = new HttpClient { BaseAddress = server.Address };
        var body = new JsonObject { ["model"] = "tiny-llama", ["prompt"] = "a", ["max_tokens"] = 120, ["ignore_eos"] = true };
        using HttpResponseMessage response = await http.PostAsync("/v1/completions", ServerFixture.Json(body), TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.RequestTimeout, response.StatusCode);
        JsonElement error = JsonDocument.Parse(await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken)).RootElement.GetProperty("error");
        Assert.Equal("request_timeout", error.GetProperty("code").GetString());
        Assert.Equal("The request ran past the server's timeout of 0.01 s (--request-timeout).", error.GetProperty("message").GetString());
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (served.Scheduler.Running + served.Scheduler.Waiting > 0 && waited.Elapsed < TimeSpan.FromSeconds(10)) await Task.Delay(5, TestContext.Current.CancellationToken);
        Assert.Equal(0, served.Scheduler.Running);
        Assert.Equal(0, served.Scheduler.Waiting);
    }
}
