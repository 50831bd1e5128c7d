using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using PeftHost.Engine.Inference;
using PeftHost.Hosting;
using PeftHost.Serving;
using PeftHost.Serving.Completions;
using Xunit;

namespace PeftHost.Tests.Serving;

/// <summary>PeftHost's IChatClient driven through Microsoft.Extensions.AI's own abstractions, registered with AddPeftHostChatClient.</summary>
public sealed class ChatClientTests : IDisposable
{
    private readonly ServingModels _models = new();
    private readonly ServiceProvider _services;

    public ChatClientTests()
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddPeftHost(o => { o.PluginsDirectory = _models.Plugins; o.HotReload = false; });
        services.AddPeftHostChatClient(new ServedModelOptions
        {
            ModelFolder = _models.Model, MaxBatch = 2,
            Adapters = [new AdapterSpec("sql", _models.Folder("sql")), new AdapterSpec("soft", _models.Folder("soft"))],
        }).UseLogging();
        _services = services.BuildServiceProvider();
    }

    public void Dispose()
    {
        _services.Dispose();
        _models.Dispose();
    }

    private IChatClient Client => _services.GetRequiredService<IChatClient>();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData("sql")]
    [InlineData("soft")]
    [InlineData(null)]
    public async Task ModelId_picks_the_adapter_and_the_response_equals_it_served_alone(string? model)
    {
        var options = new ChatOptions { ModelId = model, Temperature = 0, MaxOutputTokens = 12 };
        (string expected, int tokens) = _models.Reference(model, _models.Chat("hello there"), 12);
        ChatResponse response = await Client.GetResponseAsync("hello there", options, Ct);
        Assert.Equal(expected, response.Text);
        Assert.Equal(model ?? "tiny-llama", response.ModelId);
        Assert.Equal(tokens == 12 ? ChatFinishReason.Length : ChatFinishReason.Stop, response.FinishReason);
        Assert.Equal(_models.Chat("hello there").Count, response.Usage!.InputTokenCount);
        Assert.Equal(tokens, response.Usage.OutputTokenCount);

        List<ChatResponseUpdate> updates = [];
        await foreach (ChatResponseUpdate u in Client.GetStreamingResponseAsync("hello there", options, Ct)) updates.Add(u);
        ChatResponse combined = updates.ToChatResponse();
        Assert.Equal(expected, combined.Text);
        Assert.Equal(response.FinishReason, combined.FinishReason);
        Assert.Equal(tokens, combined.Usage!.OutputTokenCount);
    }

    [Fact]
    public async Task A_system_prompt_goes_through_the_template_and_metadata_names_the_base()
    {
        var metadata = Client.GetService<ChatClientMetadata>();
        Assert.Equal("pefthost", metadata!.ProviderName);
        Assert.Equal("tiny-llama", metadata.DefaultModelId);
        ChatMessage[] messages = [new(ChatRole.System, "be brief"), new(ChatRole.User, "hi")];
        ChatResponse response = await Client.GetResponseAsync(messages, new ChatOptions { Temperature = 0, MaxOutputTokens = 6 }, Ct);
        IReadOnlyList<int> prompt = _models.Tokenizer.Encode("system: be brief\nuser: hi\nassistant: ", addSpecialTokens: false);
        Assert.Equal(_models.Reference(null, prompt, 6).Text, response.Text);
    }

    [Fact]
    public async Task Cancelling_ends_the_request_and_frees_its_row()
    {
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var options = new ChatOptions { Temperature = 0, MaxOutputTokens = 100, ModelId = "sql" };
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (ChatResponseUpdate _ in Client.GetStreamingResponseAsync("go on", options, cancel.Token)) await cancel.CancelAsync();
        });
        ServedModel served = _services.GetRequiredService<ServedModel>();
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (served.Scheduler.Running > 0 && waited.Elapsed < TimeSpan.FromSeconds(10)) await Task.Delay(5, Ct);
        Assert.Equal(0, served.Scheduler.Running);
    }

    [Fact]
    public async Task Unknown_models_tools_and_bad_values_are_refused()
    {
        await Assert.ThrowsAsync<KeyNotFoundException>(() => Client.GetResponseAsync("hi", new ChatOptions { ModelId = "nope" }, Ct));
        var tools = new ChatOptions { Tools = [AIFunctionFactory.Create(() => 42, "answer")] };
        await Assert.ThrowsAsync<NotSupportedException>(() => Client.GetResponseAsync("hi", tools, Ct));
        var hot = await Assert.ThrowsAsync<ServingRequestException>(() => Client.GetResponseAsync("hi", new ChatOptions { Temperature = 3 }, Ct));
        Assert.Equal("temperature", hot.ParamName);
        await Assert.ThrowsAsync<ServingRequestException>(() => Client.GetResponseAsync(new string('a', 300), cancellationToken: Ct));
    }
}
