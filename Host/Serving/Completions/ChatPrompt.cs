using PeftHost.Tokenizers;

namespace PeftHost.Serving.Completions;

/// <summary>A conversation to prompt ids: the model folder's chat template (Jinja, as transformers renders it) with the assistant's generation prompt.</summary>
public static class ChatPrompt
{
    /// <summary>Renders and encodes the conversation (the template writes the special tokens, so none are added).</summary>
    /// <exception cref="ServingRequestException">The model has no chat template, or the template refuses these messages.</exception>
    public static IReadOnlyList<int> Encode(ITextTokenizer tokenizer, IReadOnlyList<ChatMessage> messages)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(messages);
        if (messages.Count == 0) throw new ServingRequestException("'messages' is empty; expected at least one message.", "messages");
        ChatTemplate template = tokenizer.ChatTemplate
            ?? throw new ServingRequestException("The model has no chat template (its tokenizer_config.json has no chat_template): use /v1/completions.", "messages");
        string text;
        try
        {
            text = template.Apply(messages, addGenerationPrompt: true);
        }
        catch (ChatTemplateException e)
        {
            throw new ServingRequestException($"The chat template cannot render these messages: {e.Message}", "messages");
        }
        return tokenizer.Encode(text, addSpecialTokens: false);
    }
}
