using System.Text.Json;
using PeftHost.Serving.Completions;
using PeftHost.Tokenizers;

namespace PeftHost.Serving.OpenAi;

/// <summary>
/// The bodies of /v1/completions and /v1/chat/completions as vLLM reads them, checked into a
/// <see cref="CompletionSpec"/>: what the server does not implement (n &gt; 1, logprobs, tools, penalties, ...) is
/// refused with 400 "unsupported" rather than ignored; unknown fields are ignored, as vLLM does.
/// </summary>
public static class GenerationRequestParser
{
    /// <summary>max_tokens when a completion request gives none (vLLM's default).</summary>
    public const int DefaultCompletionMaxTokens = 16;

    /// <summary>A /v1/completions body.</summary>
    /// <exception cref="ServingRequestException">A field is missing, of the wrong type, out of range or unsupported.</exception>
    /// <exception cref="KeyNotFoundException">The model is not served.</exception>
    public static (CompletionSpec Spec, StreamSettings Stream) Completion(RequestBody body, ServedModel model)
    {
        string name = body.RequiredString("model");
        CommonChecks(body, chat: false);
        if (body.Bool("echo") == true) throw ServingRequestException.Unsupported("echo", "'echo' (the prompt repeated in the completion)");
        if (body.Has("suffix")) throw ServingRequestException.Unsupported("suffix", "'suffix' (insertion)");
        if (body.Int32("best_of") is int best && best != 1) throw ServingRequestException.Unsupported("best_of", "'best_of' other than 1");
        if (body.Get("logprobs") is { } lp && !(lp.ValueKind == JsonValueKind.Number && lp.TryGetInt32(out int n) && n == 0))
            throw ServingRequestException.Unsupported("logprobs", "'logprobs'");
        string? adapter = model.AdapterOf(name);
        IReadOnlyList<int> prompt = Prompt(body, model);
        return Finish(body, model, name, adapter, prompt, DefaultCompletionMaxTokens, "prompt");
    }

    /// <summary>A /v1/chat/completions body: the messages rendered with the model's chat template.</summary>
    /// <exception cref="ServingRequestException">A field is missing, of the wrong type, out of range or unsupported.</exception>
    /// <exception cref="KeyNotFoundException">The model is not served.</exception>
    public static (CompletionSpec Spec, StreamSettings Stream) Chat(RequestBody body, ServedModel model)
    {
        string name = body.RequiredString("model");
        CommonChecks(body, chat: true);
        if (body.Bool("logprobs") == true) throw ServingRequestException.Unsupported("logprobs", "'logprobs'");
        if (body.Has("top_logprobs")) throw ServingRequestException.Unsupported("top_logprobs", "'top_logprobs'");
        foreach (string tool in new[] { "tools", "tool_choice", "functions", "function_call" })
            if (body.Get(tool) is { } t && !(t.ValueKind == JsonValueKind.Array && t.GetArrayLength() == 0) && !(tool == "tool_choice" && t.ValueKind == JsonValueKind.String && t.GetString() == "none"))
                throw ServingRequestException.Unsupported(tool, $"'{tool}' (tool calling)");
        if (body.Get("response_format") is { } format && !(format.ValueKind == JsonValueKind.Object && format.TryGetProperty("type", out JsonElement type) && type.ValueKind == JsonValueKind.String && type.GetString() == "text"))
            throw ServingRequestException.Unsupported("response_format", "'response_format' other than text");
        string? adapter = model.AdapterOf(name);
        IReadOnlyList<int> prompt = ChatPrompt.Encode(model.Tokenizer, Messages(body));
        return Finish(body, model, name, adapter, prompt, null, "messages");
    }

    private static void CommonChecks(RequestBody body, bool chat)
    {
        if (body.Int32("n") is int n && n != 1) throw ServingRequestException.Unsupported("n", $"'n' = {n} (one choice per request)");
        foreach (string penalty in new[] { "presence_penalty", "frequency_penalty" })
            if (body.Number(penalty) is double v && v != 0) throw ServingRequestException.Unsupported(penalty, $"'{penalty}' other than 0 (use repetition_penalty)");
        if (body.Get("logit_bias") is { } bias && !(bias.ValueKind == JsonValueKind.Object && !bias.EnumerateObject().Any()))
            throw ServingRequestException.Unsupported("logit_bias", "'logit_bias'");
        if (chat && body.Has("max_tokens") && body.Has("max_completion_tokens"))
            throw new ServingRequestException("Give 'max_tokens' or 'max_completion_tokens', not both.", "max_tokens");
    }

    private static (CompletionSpec, StreamSettings) Finish(RequestBody body, ServedModel model, string name, string? adapter, IReadOnlyList<int> prompt, int? defaultMax, string promptParam)
    {
        string maxParam = body.Has("max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
        int? max = body.Int32(maxParam);
        if (max is < 1) throw new ServingRequestException($"'{maxParam}' is {max}; expected at least 1.", maxParam);
        int maxTokens = CompletionSpec.ResolveMaxTokens(model, prompt.Count, adapter, max, defaultMax, promptParam);
        var sampling = Sampling.Options(body.Number("temperature"), body.Number("top_p"), body.Int32("top_k"), body.Integer("seed"), body.Number("repetition_penalty"));
        IReadOnlyList<string> stop = Sampling.Stop(body.Strings("stop"));
        bool stream = body.Bool("stream") ?? false;
        bool usage = false;
        if (body.Get("stream_options") is { } options)
        {
            if (!stream) throw new ServingRequestException("'stream_options' is only allowed when 'stream' is true.", "stream_options");
            if (options.ValueKind != JsonValueKind.Object) throw RequestBody.WrongType("stream_options", options, "an object");
            if (options.TryGetProperty("include_usage", out JsonElement u) && u.ValueKind != JsonValueKind.Null)
                usage = u.ValueKind is JsonValueKind.True or JsonValueKind.False ? u.GetBoolean() : throw RequestBody.WrongType("stream_options.include_usage", u, "a boolean");
        }
        bool ignoreEos = body.Bool("ignore_eos") ?? false;
        return (new CompletionSpec(name, prompt, adapter, maxTokens, stop, sampling, ignoreEos), new StreamSettings(stream, usage));
    }

    // A string, an array of one string, an array of token ids, or an array of one such array.
    private static IReadOnlyList<int> Prompt(RequestBody body, ServedModel model)
    {
        JsonElement prompt = body.Get("prompt") ?? throw new ServingRequestException("'prompt' is required.", "prompt");
        if (prompt.ValueKind == JsonValueKind.String) return Encode(model, prompt.GetString()!);
        if (prompt.ValueKind != JsonValueKind.Array) throw RequestBody.WrongType("prompt", prompt, "a string, an array of token ids, or an array of one of these");
        JsonElement[] items = [.. prompt.EnumerateArray()];
        if (items.Length == 0) throw new ServingRequestException("'prompt' is empty.", "prompt");
        if (items.All(i => i.ValueKind == JsonValueKind.Number)) return Ids(items, model);
        if (items.Length > 1) throw ServingRequestException.Unsupported("prompt", "several prompts in one request (send one request per prompt)");
        return items[0].ValueKind switch
        {
            JsonValueKind.String => Encode(model, items[0].GetString()!),
            JsonValueKind.Array => Ids([.. items[0].EnumerateArray()], model),
            _ => throw new ServingRequestException($"'prompt' holds a {RequestBody.Kind(items[0])}; expected a string or token ids.", "prompt"),
        };
    }

    private static IReadOnlyList<int> Encode(ServedModel model, string text)
    {
        if (text.Length == 0) throw new ServingRequestException("'prompt' is empty.", "prompt");
        return model.Tokenizer.Encode(text);
    }

    private static int[] Ids(JsonElement[] items, ServedModel model)
    {
        int vocab = model.Scheduler.Decoder.VocabSize;
        var ids = new int[items.Length];
        for (int i = 0; i < items.Length; i++)
        {
            if (items[i].ValueKind != JsonValueKind.Number || !items[i].TryGetInt32(out int id))
                throw new ServingRequestException($"'prompt'[{i}] is not an integer token id.", "prompt");
            if (id < 0 || id >= vocab) throw new ServingRequestException($"'prompt'[{i}] is token id {id}, outside the model's vocabulary [0, {vocab}).", "prompt");
            ids[i] = id;
        }
        if (ids.Length == 0) throw new ServingRequestException("'prompt' is empty.", "prompt");
        return ids;
    }

    // OpenAI's messages: roles system (developer), user, assistant; content a string or text parts.
    private static List<ChatMessage> Messages(RequestBody body)
    {
        JsonElement messages = body.Get("messages") ?? throw new ServingRequestException("'messages' is required.", "messages");
        if (messages.ValueKind != JsonValueKind.Array) throw RequestBody.WrongType("messages", messages, "an array of messages");
        var list = new List<ChatMessage>();
        int index = 0;
        foreach (JsonElement m in messages.EnumerateArray())
        {
            string where = $"messages[{index++}]";
            if (m.ValueKind != JsonValueKind.Object) throw new ServingRequestException($"'{where}' is a {RequestBody.Kind(m)}; expected an object with 'role' and 'content'.", "messages");
            if (!m.TryGetProperty("role", out JsonElement roleValue) || roleValue.ValueKind != JsonValueKind.String)
                throw new ServingRequestException($"'{where}.role' is missing or not a string.", "messages");
            string role = roleValue.GetString()!;
            role = role switch
            {
                "system" or "user" or "assistant" => role,
                "developer" => "system",
                "tool" or "function" => throw ServingRequestException.Unsupported("messages", $"'{where}' has role '{role}' (tool calling)"),
                _ => throw new ServingRequestException($"'{where}.role' is '{role}'; expected system, developer, user or assistant.", "messages"),
            };
            if (m.TryGetProperty("tool_calls", out JsonElement calls) && calls.ValueKind != JsonValueKind.Null)
                throw ServingRequestException.Unsupported("messages", $"'{where}.tool_calls' (tool calling)");
            list.Add(new ChatMessage(role, Content(m, where)));
        }
        return list;
    }

    private static string Content(JsonElement message, string where)
    {
        if (!message.TryGetProperty("content", out JsonElement content) || content.ValueKind == JsonValueKind.Null) return "";
        if (content.ValueKind == JsonValueKind.String) return content.GetString()!;
        if (content.ValueKind != JsonValueKind.Array) throw new ServingRequestException($"'{where}.content' is a {RequestBody.Kind(content)}; expected a string or an array of text parts.", "messages");
        var text = new System.Text.StringBuilder();
        foreach (JsonElement part in content.EnumerateArray())
        {
            string? type = part.ValueKind == JsonValueKind.Object && part.TryGetProperty("type", out JsonElement t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
            if (type != "text") throw ServingRequestException.Unsupported("messages", $"content part of type '{type ?? RequestBody.Kind(part)}' in '{where}' (text only)");
            if (!part.TryGetProperty("text", out JsonElement value) || value.ValueKind != JsonValueKind.String)
                throw new ServingRequestException($"A text part of '{where}.content' has no string 'text'.", "messages");
            text.Append(value.GetString());
        }
        return text.ToString();
    }
}

/// <summary>Whether a response streams (server-sent events) and whether the stream ends with a usage chunk.</summary>
/// <param name="Stream">Stream the completion as chunks.</param>
/// <param name="IncludeUsage">stream_options.include_usage: a last chunk with the usage and no choices.</param>
public sealed record StreamSettings(bool Stream, bool IncludeUsage);
