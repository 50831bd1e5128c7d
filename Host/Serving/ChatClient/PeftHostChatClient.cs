using System.Runtime.CompilerServices;
using Microsoft.Extensions.AI;
using PeftHost.Serving.Completions;
using TemplateMessage = PeftHost.Tokenizers.ChatMessage;

namespace PeftHost.Serving.ChatClient;

/// <summary>
/// Microsoft.Extensions.AI's <see cref="IChatClient"/> over a <see cref="ServedModel"/>, in process: the same
/// scheduler, chat template and stop rules as the OpenAI server, so an application written against
/// Microsoft.Extensions.AI (or Semantic Kernel) runs on PeftHost unchanged. <see cref="ChatOptions.ModelId"/> picks
/// the adapter (an adapter's name, or the base's; default: the base); temperature (default 1, 0 = greedy), top-p,
/// top-k, max output tokens (default: the context's remainder), stop sequences and seed are honoured; usage comes
/// back in <see cref="ChatResponse.Usage"/> (streaming: a <see cref="UsageContent"/> in the last update); cancelling
/// frees the request's row at once. Tools, non-text content, penalties and response formats are refused
/// (<see cref="NotSupportedException"/>), never ignored.
/// </summary>
public sealed class PeftHostChatClient : IChatClient
{
    private readonly ServedModel _model;
    private readonly bool _ownsModel;

    /// <summary>A client over <paramref name="model"/>; with <paramref name="ownsModel"/> disposing the client disposes the model.</summary>
    public PeftHostChatClient(ServedModel model, bool ownsModel = false)
    {
        ArgumentNullException.ThrowIfNull(model);
        _model = model;
        _ownsModel = ownsModel;
        Metadata = new ChatClientMetadata("pefthost", null, model.BaseName);
    }

    /// <summary>Provider "pefthost", default model the base's name.</summary>
    public ChatClientMetadata Metadata { get; }

    /// <inheritdoc/>
    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        CompletionSpec spec = Spec(messages, options);
        CompletionOutcome outcome = await TextCompletion.RunAsync(_model, spec, cancellationToken).ConfigureAwait(false);
        return new ChatResponse(new ChatMessage(ChatRole.Assistant, outcome.Text))
        {
            ResponseId = NewId(),
            ModelId = spec.Model,
            CreatedAt = DateTimeOffset.UtcNow,
            FinishReason = Finish(outcome),
            Usage = Usage(outcome),
        };
    }

    /// <inheritdoc/>
    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        CompletionSpec spec = Spec(messages, options);
        string id = NewId();
        DateTimeOffset created = DateTimeOffset.UtcNow;
        var outcome = new CompletionOutcome();
        await foreach (string piece in TextCompletion.StreamAsync(_model, spec, outcome, cancellationToken).ConfigureAwait(false))
            if (piece.Length > 0) yield return new ChatResponseUpdate(ChatRole.Assistant, piece) { ResponseId = id, MessageId = id, ModelId = spec.Model, CreatedAt = created };
        yield return new ChatResponseUpdate(ChatRole.Assistant, [new UsageContent(Usage(outcome))])
        {
            ResponseId = id, MessageId = id, ModelId = spec.Model, CreatedAt = created, FinishReason = Finish(outcome),
        };
    }

    /// <inheritdoc/>
    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null) return null;
        if (serviceType == typeof(ChatClientMetadata)) return Metadata;
        if (serviceType == typeof(ServedModel)) return _model;
        return serviceType.IsInstanceOfType(this) ? this : null;
    }

    /// <summary>Disposes the model when this client owns it.</summary>
    public void Dispose()
    {
        if (_ownsModel) _model.Dispose();
    }

    private CompletionSpec Spec(IEnumerable<ChatMessage> messages, ChatOptions? options)
    {
        ArgumentNullException.ThrowIfNull(messages);
        if (options?.Tools is { Count: > 0 }) throw new NotSupportedException("PeftHost's chat client does not call tools (ChatOptions.Tools is set).");
        if (options?.ResponseFormat is not null and not ChatResponseFormatText) throw new NotSupportedException("PeftHost's chat client writes plain text only (ChatOptions.ResponseFormat asks for JSON).");
        if (options?.FrequencyPenalty is float f && f != 0) throw new NotSupportedException("ChatOptions.FrequencyPenalty is not supported (0 only).");
        if (options?.PresencePenalty is float p && p != 0) throw new NotSupportedException("ChatOptions.PresencePenalty is not supported (0 only).");
        var turns = new List<TemplateMessage>();
        foreach (ChatMessage m in messages)
        {
            string role = m.Role == ChatRole.System ? "system" : m.Role == ChatRole.User ? "user" : m.Role == ChatRole.Assistant ? "assistant"
                : throw new NotSupportedException($"Messages of role '{m.Role}' are not supported (system, user and assistant only).");
            if (m.Contents.FirstOrDefault(c => c is not TextContent) is AIContent other)
                throw new NotSupportedException($"A {role} message holds {other.GetType().Name}: PeftHost's chat client takes text only.");
            turns.Add(new TemplateMessage(role, m.Text));
        }
        string model = options?.ModelId ?? _model.BaseName;
        string? adapter = _model.AdapterOf(model);
        IReadOnlyList<int> prompt = ChatPrompt.Encode(_model.Tokenizer, turns);
        if (options?.MaxOutputTokens is < 1) throw new ArgumentException($"ChatOptions.MaxOutputTokens is {options.MaxOutputTokens}; expected at least 1.", nameof(options));
        int maxTokens = CompletionSpec.ResolveMaxTokens(_model, prompt.Count, adapter, options?.MaxOutputTokens, null, "messages");
        var sampling = Sampling.Options(options?.Temperature, options?.TopP, options?.TopK, options?.Seed, null);
        IReadOnlyList<string> stop = Sampling.Stop(options?.StopSequences is { } s ? [.. s] : null);
        return new CompletionSpec(model, prompt, adapter, maxTokens, stop, sampling);
    }

    private static string NewId() => "chatcmpl-" + Guid.NewGuid().ToString("N");

    private static ChatFinishReason? Finish(CompletionOutcome o) => o.FinishReason switch
    {
        "stop" => ChatFinishReason.Stop,
        "length" => ChatFinishReason.Length,
        _ => null,
    };

    private static UsageDetails Usage(CompletionOutcome o) => new() { InputTokenCount = o.PromptTokens, OutputTokenCount = o.CompletionTokens, TotalTokenCount = o.TotalTokens };
}
