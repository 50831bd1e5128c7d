using System.Collections.Concurrent;
using PeftHost.Tokenizers.Jinja;
using PeftHost.Tokenizers.Jinja.Runtime;
using PeftHost.Tokenizers.Jinja.Syntax;

namespace PeftHost.Tokenizers;

/// <summary>
/// A chat template (tokenizer_config.json's Jinja <c>chat_template</c>) rendered by this project's Jinja
/// interpreter exactly as transformers' <c>apply_chat_template</c> renders it: the template sees
/// <c>messages</c>, <c>tools</c> and <c>documents</c> (None unless given), <c>add_generation_prompt</c>, the
/// tokenizer's special tokens (<c>bos_token</c>, <c>eos_token</c>, ...; a token the tokenizer lacks is
/// undefined), <c>raise_exception</c> and <c>strftime_now</c>. Parsed once; renders are thread-safe.
/// </summary>
public sealed class ChatTemplate
{
    private const int CacheLimit = 64;

    // Parsed trees by template text: tokenizers of one model share a template, and parsing is the costly part.
    private static readonly ConcurrentDictionary<string, JinjaTemplate> Parsed = new(StringComparer.Ordinal);

    private readonly IReadOnlyDictionary<string, string> _specialTokens;
    private readonly TimeProvider _clock;
    private readonly Lazy<JinjaTemplate> _template;

    private ChatTemplate(string source, IReadOnlyDictionary<string, string> specialTokens, TimeProvider? clock, string? origin)
    {
        Source = source;
        _specialTokens = specialTokens;
        _clock = clock ?? TimeProvider.System;
        Origin = origin ?? "chat_template";
        _template = new Lazy<JinjaTemplate>(Compile, LazyThreadSafetyMode.ExecutionAndPublication);
    }

    /// <summary>The Jinja text of the template.</summary>
    public string Source { get; }

    /// <summary>Where the template came from, as error messages name it (e.g. the tokenizer_config.json path).</summary>
    public string Origin { get; }

    /// <summary>Parses a chat template.</summary>
    /// <param name="template">The Jinja text (tokenizer_config.json's chat_template after JSON decoding).</param>
    /// <param name="bosToken">The tokenizer's bos_token, or null when it has none (then <c>bos_token</c> is undefined).</param>
    /// <param name="eosToken">The tokenizer's eos_token, or null when it has none.</param>
    /// <param name="clock">The clock <c>strftime_now</c> reads (default: the system's local time).</param>
    /// <returns>The parsed template.</returns>
    /// <exception cref="ChatTemplateException">The text is not valid Jinja (the message names line, column and what was expected).</exception>
    public static ChatTemplate Parse(string template, string? bosToken, string? eosToken, TimeProvider? clock = null)
    {
        var tokens = new Dictionary<string, string>(StringComparer.Ordinal);
        if (bosToken is not null) tokens["bos_token"] = bosToken;
        if (eosToken is not null) tokens["eos_token"] = eosToken;
        return Parse(template, tokens, null, clock);
    }

    /// <summary>Parses a chat template.</summary>
    /// <param name="template">The Jinja text.</param>
    /// <param name="specialTokens">The tokenizer's special tokens map, as transformers passes it (bos_token, eos_token, unk_token, pad_token, ...).</param>
    /// <param name="origin">Where the template came from, for error messages (null: "chat_template").</param>
    /// <param name="clock">The clock <c>strftime_now</c> reads (null: the system's local time).</param>
    /// <returns>The parsed template.</returns>
    /// <exception cref="ChatTemplateException">The text is not valid Jinja.</exception>
    public static ChatTemplate Parse(string template, IReadOnlyDictionary<string, string> specialTokens, string? origin, TimeProvider? clock)
    {
        ChatTemplate t = Deferred(template, specialTokens, origin, clock);
        _ = t.Compiled;
        return t;
    }

    /// <summary>
    /// A template parsed at its first use: loading a tokenizer must not fail because of its chat template
    /// (transformers too compiles it only in apply_chat_template).
    /// </summary>
    internal static ChatTemplate Deferred(string template, IReadOnlyDictionary<string, string> specialTokens, string? origin, TimeProvider? clock = null)
    {
        ArgumentNullException.ThrowIfNull(template);
        ArgumentNullException.ThrowIfNull(specialTokens);
        return new ChatTemplate(template, specialTokens, clock, origin);
    }

    /// <summary>Renders plain text turns.</summary>
    /// <param name="messages">The conversation.</param>
    /// <param name="addGenerationPrompt">Whether to end with the assistant turn's opening (where the template has one).</param>
    /// <returns>The prompt text, special tokens written out as text.</returns>
    /// <exception cref="ChatTemplateException">The template is invalid, fails on these messages, or refuses them (its raise_exception).</exception>
    public string Apply(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt)
    {
        ArgumentNullException.ThrowIfNull(messages);
        return Render(messages, addGenerationPrompt);
    }

    /// <summary>
    /// Renders any conversation, as apply_chat_template(conversation, tools, documents, add_generation_prompt, **kwargs) does.
    /// Messages, tools and documents may be <see cref="ChatMessage"/>s, System.Text.Json elements or nodes, or
    /// dictionaries and lists of strings, numbers, booleans and nulls (a message's content may be a list of parts,
    /// an assistant message may carry tool_calls).
    /// </summary>
    /// <param name="messages">The conversation.</param>
    /// <param name="addGenerationPrompt">Whether to end with the assistant turn's opening.</param>
    /// <param name="tools">JSON schemas of the tools the model may call, or null (the template sees None).</param>
    /// <param name="documents">Documents for retrieval-augmented templates, or null (the template sees None).</param>
    /// <param name="variables">Further template variables (they override the special tokens, as transformers' kwargs do).</param>
    /// <returns>The prompt text.</returns>
    /// <exception cref="ChatTemplateException">The template is invalid, fails on these messages, or refuses them.</exception>
    /// <exception cref="ArgumentException">A value has a type a template cannot see.</exception>
    public string Render(IEnumerable<object?> messages, bool addGenerationPrompt, IEnumerable<object?>? tools = null,
        IEnumerable<object?>? documents = null, IReadOnlyDictionary<string, object?>? variables = null)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var conversation = (PyList)ClrValues.ToTemplate(messages)!;
        var values = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach ((string name, string token) in _specialTokens) values[name] = token;
        if (variables is not null)
        {
            foreach ((string name, object? value) in variables) values[name] = value;
        }
        values["messages"] = conversation;
        values["tools"] = tools is null ? null : ClrValues.ToTemplate(tools);
        values["documents"] = documents is null ? null : ClrValues.ToTemplate(documents);
        values["add_generation_prompt"] = addGenerationPrompt;
        JinjaTemplate template = Compiled;
        try
        {
            return template.Render(values, _clock);
        }
        catch (JinjaRuntimeException e)
        {
            string what = e.Kind == TemplateErrorKind.Raised ? "the template raised an error" : "rendering failed";
            throw new ChatTemplateException($"{Origin}: {what} at {e.Position}: {e.Message[(e.Position.ToString().Length + 2)..]} (message roles: {Roles(conversation)})",
                e.Position.Line, e.Position.Column, e);
        }
    }

    private JinjaTemplate Compiled
    {
        get
        {
            try
            {
                return _template.Value;
            }
            catch (JinjaSyntaxException e)
            {
                throw new ChatTemplateException($"{Origin}: syntax error at {e.Position}: {e.Detail}", e.Position.Line, e.Position.Column, e);
            }
        }
    }

    private JinjaTemplate Compile()
    {
        if (Parsed.TryGetValue(Source, out JinjaTemplate? cached)) return cached;
        JinjaTemplate parsed = ChatTemplateEnvironment.Instance.Parse(Source);
        if (Parsed.Count >= CacheLimit) Parsed.Clear();
        Parsed[Source] = parsed;
        return parsed;
    }

    private static string Roles(PyList conversation)
    {
        var roles = new List<string>(conversation.Count);
        foreach (object? m in conversation.Items)
        {
            roles.Add(m is PyDict d && d.TryGet("role", out object? role) ? PyText.Str(role) : "?");
        }
        return roles.Count == 0 ? "none" : string.Join(", ", roles);
    }
}
