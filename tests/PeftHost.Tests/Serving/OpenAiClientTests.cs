using System.ClientModel;
using OpenAI;
using OpenAI.Chat;
using OpenAI.Models;
using Xunit;

namespace PeftHost.Tests.Serving;

/// <summary>The server driven by the official OpenAI .NET client, as an application would: models, chat (whole and streamed), adapters by model name, errors.</summary>
public sealed class OpenAiClientTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private OpenAIClientOptions Options => new() { Endpoint = new Uri(fixture.Address, "/v1") };

    private ChatClient Chat(string model, string key = ServerFixture.Key) => new(model, new ApiKeyCredential(key), Options);

    [Fact]
    public async Task Models_lists_the_base_and_every_adapter()
    {
        var client = new OpenAIModelClient(new ApiKeyCredential(ServerFixture.Key), Options);
        OpenAIModelCollection models = (await client.GetModelsAsync(TestContext.Current.CancellationToken)).Value;
        Assert.Equal(["tiny-llama", "sql", "chat", "ia3", "soft"], models.Select(m => m.Id));
        Assert.All(models, m => Assert.Equal("pefthost", m.OwnedBy));
    }

    [Theory]
    [InlineData("sql")]
    [InlineData("chat")]
    [InlineData("ia3")]
    [InlineData("soft")]
    [InlineData("tiny-llama")]
    public async Task Greedy_chat_equals_the_adapter_served_alone_whole_and_streamed(string model)
    {
        var options = new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 20 };
        ChatMessage[] messages = [new UserChatMessage("hello there")];
        (string expected, int tokens) = fixture.Models.Reference(model == "tiny-llama" ? null : model, fixture.Models.Chat("hello there"), 20);

        ChatCompletion whole = (await Chat(model).CompleteChatAsync(messages, options, TestContext.Current.CancellationToken)).Value;
        Assert.Equal(expected, whole.Content[0].Text);
        Assert.Equal(model, whole.Model);
        Assert.Equal(fixture.Models.Chat("hello there").Count, whole.Usage.InputTokenCount);
        Assert.Equal(tokens, whole.Usage.OutputTokenCount);
        Assert.Equal(tokens == 20 ? ChatFinishReason.Length : ChatFinishReason.Stop, whole.FinishReason);

        var text = new System.Text.StringBuilder();
        ChatFinishReason? finish = null;
        ChatTokenUsage? usage = null;
        await foreach (StreamingChatCompletionUpdate update in Chat(model).CompleteChatStreamingAsync(messages, options, TestContext.Current.CancellationToken))
        {
            foreach (ChatMessageContentPart part in update.ContentUpdate) text.Append(part.Text);
            finish ??= update.FinishReason;
            usage ??= update.Usage;
        }
        Assert.Equal(expected, text.ToString());
        Assert.Equal(whole.FinishReason, finish);
        Assert.NotNull(usage);
        Assert.Equal(tokens, usage.OutputTokenCount);
        Assert.Equal(whole.Usage.TotalTokenCount, usage.TotalTokenCount);
    }

    [Fact]
    public async Task An_unknown_model_and_a_wrong_key_are_OpenAI_errors()
    {
        var missing = await Assert.ThrowsAsync<ClientResultException>(() => Chat("nope").CompleteChatAsync([new UserChatMessage("hi")], cancellationToken: TestContext.Current.CancellationToken));
        Assert.Equal(404, missing.Status);
        Assert.Contains("The model 'nope' does not exist", missing.Message);
        var denied = await Assert.ThrowsAsync<ClientResultException>(() => Chat("sql", "wrong-key").CompleteChatAsync([new UserChatMessage("hi")], cancellationToken: TestContext.Current.CancellationToken));
        Assert.Equal(401, denied.Status);
    }

    [Fact]
    public async Task Seeded_sampling_repeats_and_stop_strings_end_the_text()
    {
        var sampled = new ChatCompletionOptions { Temperature = 0.9f, TopP = 0.95f, MaxOutputTokenCount = 16 };
#pragma warning disable OPENAI001 // Seed is marked experimental in the OpenAI client; the server honours it.
        sampled.Seed = 1234;
#pragma warning restore OPENAI001
        ChatMessage[] messages = [new UserChatMessage("seeded")];
        string first = (await Chat("chat").CompleteChatAsync(messages, sampled, TestContext.Current.CancellationToken)).Value.Content[0].Text;
        string second = (await Chat("chat").CompleteChatAsync(messages, sampled, TestContext.Current.CancellationToken)).Value.Content[0].Text;
        Assert.Equal(first, second);

        (string greedy, _) = fixture.Models.Reference("sql", fixture.Models.Chat("stop here"), 20);
        Assert.True(greedy.Length >= 6, greedy);
        string stop = greedy.Substring(3, 2);
        var options = new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 20 };
        options.StopSequences.Add(stop);
        ChatCompletion stopped = (await Chat("sql").CompleteChatAsync([new UserChatMessage("stop here")], options, TestContext.Current.CancellationToken)).Value;
        Assert.Equal(greedy[..greedy.IndexOf(stop, StringComparison.Ordinal)], stopped.Content[0].Text);
        Assert.Equal(ChatFinishReason.Stop, stopped.FinishReason);
    }
}
