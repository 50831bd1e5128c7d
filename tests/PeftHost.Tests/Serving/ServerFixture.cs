using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using PeftHost.Engine.Inference;
using PeftHost.Engine.Plugins;
using PeftHost.Serving;
using PeftHost.Serving.OpenAi;
using Xunit;

namespace PeftHost.Tests.Serving;

/// <summary>The OpenAI server over the tiny Llama and its adapters, on loopback at a free port, with an API key and an adapter root.</summary>
public sealed class ServerFixture : IAsyncLifetime
{
    public const string Key = "test-key-0123";
    private ServedModel? _model;
    private OpenAiServer? _server;
    private PluginCatalog? _catalog;

    internal ServingModels Models { get; } = new();

    public ServedModel Served => _model!;

    public OpenAiServer Server => _server!;

    public PluginCatalog Catalog => _catalog!;

    public Uri Address => _server!.Address;

    public async ValueTask InitializeAsync()
    {
        _catalog = new PluginCatalog(new PluginCatalogOptions { PluginsDirectory = Models.Plugins, HotReload = false });
        _catalog.Scan();
        _model = ServedModel.Open(new ServedModelOptions
        {
            ModelFolder = Models.Model,
            Adapters = [.. new[] { "sql", "chat", "ia3", "soft" }.Select(a => new AdapterSpec(a, Models.Folder(a)))],
            MaxBatch = 4,
            MaxQueue = 64,
        }, _catalog);
        _server = await OpenAiServer.StartAsync(_model, new OpenAiServerOptions { Port = 0, ApiKey = Key, AdapterRoot = Models.AdapterRoot, MaxBodyBytes = 64 * 1024 });
    }

    public HttpClient Http(string? key = Key)
    {
        var http = new HttpClient { BaseAddress = Address, Timeout = TimeSpan.FromMinutes(2) };
        if (key is not null) http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return http;
    }

    public static StringContent Json(JsonNode body) => new(body.ToJsonString(), Encoding.UTF8, "application/json");

    public async ValueTask DisposeAsync()
    {
        if (_server is not null) await _server.DisposeAsync();
        _model?.Dispose();
        _catalog?.Dispose();
        Models.Dispose();
    }
}
