using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace PeftHost.Tokenizers;

/// <summary>
/// A chat template recognised from its Jinja text by characteristic markers (no Jinja engine), applied
/// to messages to produce exactly the text the original template renders for plain text turns.
/// </summary>
public sealed partial class ChatTemplate
{
    private readonly string _bos;
    private readonly string _eos;
    private readonly bool _leadingBos;
    private readonly bool _usesStrftime;

    private ChatTemplate(ChatTemplateFormat format, string bos, string eos, bool leadingBos, string? defaultSystemPrompt, string? dateString, bool usesStrftime)
    {
        Format = format;
        _bos = bos;
        _eos = eos;
        _leadingBos = leadingBos;
        DefaultSystemPrompt = defaultSystemPrompt;
        DateString = dateString;
        _usesStrftime = usesStrftime;
    }

    /// <summary>The recognised format.</summary>
    public ChatTemplateFormat Format { get; }

    /// <summary>ChatML only: the system prompt the template inserts when the messages have none (Qwen2), or null.</summary>
    public string? DefaultSystemPrompt { get; }

    /// <summary>Llama 3.1 only: the fixed "Today Date" the template falls back on, or null when it asks for today's date.</summary>
    public string? DateString { get; }

    /// <summary>Recognises a chat template by its markers.</summary>
    /// <param name="template">The Jinja text from tokenizer_config.json.</param>
    /// <param name="bosToken">The tokenizer's bos_token (rendered where the template writes bos_token).</param>
    /// <param name="eosToken">The tokenizer's eos_token (rendered where the template writes eos_token).</param>
    /// <returns>The recognised template.</returns>
    /// <exception cref="ChatTemplateException">The template matches none of the supported formats.</exception>
    public static ChatTemplate Recognize(string template, string? bosToken, string? eosToken)
    {
        ArgumentNullException.ThrowIfNull(template);
        string bos = bosToken ?? "";
        string eos = eosToken ?? "";
        bool usesBos = template.Contains("bos_token", StringComparison.Ordinal);
        if (template.Contains("<|im_start|>", StringComparison.Ordinal))
        {
            if (template.Contains("<think>", StringComparison.Ordinal))
            {
                throw new ChatTemplateException("ChatML template with <think> reasoning blocks (Qwen3 style) is not supported.");
            }

            Match m = ChatMlDefaultSystem().Match(template);
            string? system = m.Success ? Unescape(m.Groups[1].Value) : null;
            bool leading = LeadingBos().IsMatch(template);
            return new ChatTemplate(ChatTemplateFormat.ChatML, bos, eos, leading, system, null, false);
        }

        if (template.Contains("<|start_header_id|>", StringComparison.Ordinal))
        {
            if (!template.Contains("Cutting Knowledge Date", StringComparison.Ordinal))
            {
                return new ChatTemplate(ChatTemplateFormat.Llama3, bos, eos, usesBos, null, null, false);
            }

            Match date = LlamaDateString().Match(template);
            bool strftime = template.Contains("strftime_now", StringComparison.Ordinal);
            if (!date.Success && !strftime)
            {
                throw new ChatTemplateException("Llama 3.1 style template without a date_string default or strftime_now is not supported.");
            }

            return new ChatTemplate(ChatTemplateFormat.Llama31, bos, eos, usesBos, null, date.Success ? date.Groups[1].Value : null, strftime);
        }

        if (template.Contains("<start_of_turn>", StringComparison.Ordinal))
        {
            ChatTemplateFormat f = template.Contains("first_user_prefix", StringComparison.Ordinal) ? ChatTemplateFormat.Gemma3 : ChatTemplateFormat.Gemma;
            return new ChatTemplate(f, bos, eos, usesBos, null, null, false);
        }

        if (template.Contains("[INST]", StringComparison.Ordinal))
        {
            if (template.Contains("<<SYS>>", StringComparison.Ordinal))
            {
                if (!template.Contains("'[INST] ' + content.strip() + ' [/INST]'", StringComparison.Ordinal)
                    || !template.Contains("content.strip() + ' ' + eos_token", StringComparison.Ordinal)
                    || template.Contains("use_default_system_prompt", StringComparison.Ordinal))
                {
                    throw new ChatTemplateException("unrecognised Llama 2 [INST]/<<SYS>> template variant.");
                }

                return new ChatTemplate(ChatTemplateFormat.Llama2, bos, eos, false, null, null, false);
            }

            if (template.Contains("'[INST] ' + message['content'] + ' [/INST]'", StringComparison.Ordinal)
                && template.Contains("message['content'] + eos_token", StringComparison.Ordinal))
            {
                return new ChatTemplate(ChatTemplateFormat.MistralInstruct, bos, eos, usesBos, null, null, false);
            }

            throw new ChatTemplateException("unrecognised Mistral [INST] template variant (supported: v0.1/v0.2 '[INST] ' + content + ' [/INST]').");
        }

        throw new ChatTemplateException("chat_template not recognised: supported formats are ChatML (<|im_start|>), Llama 3 (<|start_header_id|>), Llama 2 / Mistral ([INST]) and Gemma (<start_of_turn>).");
    }

    /// <summary>Renders messages as the original template does.</summary>
    /// <param name="messages">The conversation.</param>
    /// <param name="addGenerationPrompt">Whether to end with the assistant turn's opening (where the format has one).</param>
    /// <param name="today">Llama 3.2 style templates only: the date for "Today Date" (default: today, as transformers' strftime_now).</param>
    /// <returns>The prompt text, special tokens written out as text.</returns>
    /// <exception cref="ChatTemplateException">The messages cannot be expressed in this format.</exception>
    public string Apply(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt, DateOnly? today = null)
    {
        ArgumentNullException.ThrowIfNull(messages);
        if (messages.Count == 0)
        {
            throw new ChatTemplateException("there are no messages to format.");
        }

        return Format switch
        {
            ChatTemplateFormat.ChatML => ChatMl(messages, addGenerationPrompt),
            ChatTemplateFormat.Llama3 => Llama3(messages, addGenerationPrompt),
            ChatTemplateFormat.Llama31 => Llama31(messages, addGenerationPrompt, today),
            ChatTemplateFormat.Llama2 => Llama2(messages),
            ChatTemplateFormat.MistralInstruct => Mistral(messages),
            _ => Gemma(messages, addGenerationPrompt),
        };
    }

    private string ChatMl(IReadOnlyList<ChatMessage> messages, bool gen)
    {
        var sb = new StringBuilder(_leadingBos ? _bos : "");
        if (DefaultSystemPrompt is not null && messages[0].Role != "system")
        {
            sb.Append("<|im_start|>system\n").Append(DefaultSystemPrompt).Append("<|im_end|>\n");
        }

        foreach (ChatMessage m in messages)
        {
            RequireRole(m, "system", "user", "assistant");
            sb.Append("<|im_start|>").Append(m.Role).Append('\n').Append(m.Content).Append("<|im_end|>\n");
        }

        return gen ? sb.Append("<|im_start|>assistant\n").ToString() : sb.ToString();
    }

    private string Llama3(IReadOnlyList<ChatMessage> messages, bool gen)
    {
        var sb = new StringBuilder(_leadingBos ? _bos : "");
        foreach (ChatMessage m in messages)
        {
            RequireRole(m, "system", "user", "assistant");
            AppendLlama3Turn(sb, m.Role, m.Content);
        }

        return gen ? sb.Append("<|start_header_id|>assistant<|end_header_id|>\n\n").ToString() : sb.ToString();
    }

    private string Llama31(IReadOnlyList<ChatMessage> messages, bool gen, DateOnly? today)
    {
        string date = _usesStrftime
            ? (today ?? DateOnly.FromDateTime(DateTime.Now)).ToString("dd MMM yyyy", CultureInfo.InvariantCulture)
            : DateString!;
        int start = messages[0].Role == "system" ? 1 : 0;
        string system = start == 1 ? messages[0].Content.Trim() : "";
        var sb = new StringBuilder(_leadingBos ? _bos : "");
        sb.Append("<|start_header_id|>system<|end_header_id|>\n\n")
          .Append("Cutting Knowledge Date: December 2023\n")
          .Append("Today Date: ").Append(date).Append("\n\n")
          .Append(system).Append("<|eot_id|>");
        for (int i = start; i < messages.Count; i++)
        {
            RequireRole(messages[i], "system", "user", "assistant");
            AppendLlama3Turn(sb, messages[i].Role, messages[i].Content);
        }

        return gen ? sb.Append("<|start_header_id|>assistant<|end_header_id|>\n\n").ToString() : sb.ToString();
    }

    private static void AppendLlama3Turn(StringBuilder sb, string role, string content) =>
        sb.Append("<|start_header_id|>").Append(role).Append("<|end_header_id|>\n\n").Append(content.Trim()).Append("<|eot_id|>");

    private string Llama2(IReadOnlyList<ChatMessage> messages)
    {
        int start = messages[0].Role == "system" ? 1 : 0;
        string? system = start == 1 ? messages[0].Content : null;
        var sb = new StringBuilder();
        for (int i = start; i < messages.Count; i++)
        {
            ChatMessage m = messages[i];
            RequireAlternation(m, i - start);
            string content = i == start && system is not null ? $"<<SYS>>\n{system}\n<</SYS>>\n\n{m.Content}" : m.Content;
            if (m.Role == "user")
            {
                sb.Append(_bos).Append("[INST] ").Append(content.Trim()).Append(" [/INST]");
            }
            else
            {
                sb.Append(' ').Append(content.Trim()).Append(' ').Append(_eos);
            }
        }

        return sb.ToString();
    }

    private string Mistral(IReadOnlyList<ChatMessage> messages)
    {
        var sb = new StringBuilder(_leadingBos ? _bos : "");
        for (int i = 0; i < messages.Count; i++)
        {
            ChatMessage m = messages[i];
            if (m.Role == "system")
            {
                throw new ChatTemplateException("this Mistral [INST] template has no system role (only user and assistant roles are supported).");
            }

            RequireAlternation(m, i);
            sb.Append(m.Role == "user" ? $"[INST] {m.Content} [/INST]" : m.Content + _eos);
        }

        return sb.ToString();
    }

    private string Gemma(IReadOnlyList<ChatMessage> messages, bool gen)
    {
        var sb = new StringBuilder(_leadingBos ? _bos : "");
        int start = 0;
        string prefix = "";
        if (messages[0].Role == "system")
        {
            if (Format == ChatTemplateFormat.Gemma)
            {
                throw new ChatTemplateException("this Gemma template has no system role (System role not supported).");
            }

            prefix = messages[0].Content + "\n\n";
            start = 1;
        }

        for (int i = start; i < messages.Count; i++)
        {
            ChatMessage m = messages[i];
            RequireAlternation(m, i - start);
            string role = m.Role == "assistant" ? "model" : m.Role;
            sb.Append("<start_of_turn>").Append(role).Append('\n').Append(i == start ? prefix : "").Append(m.Content.Trim()).Append("<end_of_turn>\n");
        }

        return gen ? sb.Append("<start_of_turn>model\n").ToString() : sb.ToString();
    }

    private void RequireAlternation(ChatMessage m, int index)
    {
        RequireRole(m, "user", "assistant");
        if ((m.Role == "user") != (index % 2 == 0))
        {
            throw new ChatTemplateException($"{Format}: conversation roles must alternate user/assistant/user/assistant/... (message {index} is '{m.Role}').");
        }
    }

    private void RequireRole(ChatMessage m, params string[] roles)
    {
        if (!roles.Contains(m.Role))
        {
            throw new ChatTemplateException($"{Format}: role '{m.Role}' is not supported here (supported: {string.Join(", ", roles)}).");
        }
    }

    private static string Unescape(string jinjaLiteral) =>
        jinjaLiteral.Replace("\\n", "\n", StringComparison.Ordinal).Replace("\\'", "'", StringComparison.Ordinal).Replace("\\\\", "\\", StringComparison.Ordinal);

    [GeneratedRegex(@"'<\|im_start\|>system\\n((?:[^'\\]|\\.)*?)<\|im_end\|>\\n'")]
    private static partial Regex ChatMlDefaultSystem();

    [GeneratedRegex(@"^\s*\{\{-?\s*bos_token\s*-?\}\}")]
    private static partial Regex LeadingBos();

    [GeneratedRegex("set date_string = \"([^\"]+)\"")]
    private static partial Regex LlamaDateString();
}
