using System.Text.Json.Nodes;
using PeftHost.Serving.Completions;

namespace PeftHost.Serving.OpenAi;

/// <summary>The response objects of OpenAI's API as vLLM writes them: completions, chat completions, their stream chunks, usage.</summary>
public sealed class OpenAiResponses(bool chat, string model)
{
    private readonly string _id = (chat ? "chatcmpl-" : "cmpl-") + Guid.NewGuid().ToString("N");
    private readonly long _created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();

    /// <summary>The whole response of a finished completion.</summary>
    public JsonObject Complete(CompletionOutcome outcome)
    {
        ArgumentNullException.ThrowIfNull(outcome);
        JsonObject choice = chat
            ? new JsonObject { ["index"] = 0, ["message"] = new JsonObject { ["role"] = "assistant", ["content"] = outcome.Text }, ["logprobs"] = null, ["finish_reason"] = outcome.FinishReason }
            : new JsonObject { ["index"] = 0, ["text"] = outcome.Text, ["logprobs"] = null, ["finish_reason"] = outcome.FinishReason };
        JsonObject response = Head(chat ? "chat.completion" : "text_completion");
        response["choices"] = new JsonArray(choice);
        response["usage"] = Usage(outcome);
        return response;
    }

    /// <summary>A stream chunk carrying a piece of text (the first chat chunk also says the role).</summary>
    public JsonObject Piece(string text, bool first, bool includeUsage)
    {
        JsonObject choice = chat
            ? new JsonObject { ["index"] = 0, ["delta"] = first ? new JsonObject { ["role"] = "assistant", ["content"] = text } : new JsonObject { ["content"] = text }, ["logprobs"] = null, ["finish_reason"] = null }
            : new JsonObject { ["index"] = 0, ["text"] = text, ["logprobs"] = null, ["finish_reason"] = null };
        return Chunk(choice, includeUsage);
    }

    /// <summary>The chunk that ends the choice with its finish reason.</summary>
    public JsonObject Finished(string finishReason, bool includeUsage)
    {
        JsonObject choice = chat
            ? new JsonObject { ["index"] = 0, ["delta"] = new JsonObject(), ["logprobs"] = null, ["finish_reason"] = finishReason }
            : new JsonObject { ["index"] = 0, ["text"] = "", ["logprobs"] = null, ["finish_reason"] = finishReason };
        return Chunk(choice, includeUsage);
    }

    /// <summary>stream_options.include_usage's last chunk: no choices, the usage.</summary>
    public JsonObject UsageChunk(CompletionOutcome outcome)
    {
        JsonObject chunk = Head(chat ? "chat.completion.chunk" : "text_completion");
        chunk["choices"] = new JsonArray();
        chunk["usage"] = Usage(outcome);
        return chunk;
    }

    private JsonObject Chunk(JsonObject choice, bool includeUsage)
    {
        JsonObject chunk = Head(chat ? "chat.completion.chunk" : "text_completion");
        chunk["choices"] = new JsonArray(choice);
        // With include_usage, OpenAI sends "usage": null on every chunk but the last.
        if (includeUsage) chunk["usage"] = null;
        return chunk;
    }

    private JsonObject Head(string type) => new() { ["id"] = _id, ["object"] = type, ["created"] = _created, ["model"] = model };

    private static JsonObject Usage(CompletionOutcome o) => new()
    {
        ["prompt_tokens"] = o.PromptTokens, ["completion_tokens"] = o.CompletionTokens, ["total_tokens"] = o.TotalTokens,
    };
}
