using System.Text.Json;
using PeftHost.Formats.Tests.Support;
using PeftHost.Formats.Tests.Tokenizers.Jinja;
using PeftHost.Tokenizers;
using Xunit;

namespace PeftHost.Formats.Tests.Tokenizers;

/// <summary>
/// The major families' real templates (Llama 3/3.1/3.2, Qwen2/2.5, Mistral v0.1/v0.2/v0.3/Nemo, Gemma 1/2/3,
/// Phi-3/3.5; texts and sources in tests/fixtures/chat_templates/templates.json) on every conversation of
/// conversations.json, with and without the generation prompt, against transformers 4.44's own
/// apply_chat_template environment running jinja2 (expected/*.json, made by tools/chat-templates/render_references.py).
/// </summary>
public sealed class ChatTemplateReferenceTests
{
    private static readonly DateTime ReferenceClock = new(2024, 9, 17, 14, 5, 9);

    private static readonly Lazy<Dictionary<string, JsonElement>> Conversations = new(() =>
    {
        using JsonDocument doc = JsonDocument.Parse(File.ReadAllText(RepoFixtures.Path("chat_templates", "conversations.json")));
        return doc.RootElement.EnumerateArray().ToDictionary(c => c.GetProperty("id").GetString()!, c => c.Clone());
    });

    private static readonly Lazy<List<JsonElement>> Templates = new(() =>
    {
        using JsonDocument doc = JsonDocument.Parse(File.ReadAllText(RepoFixtures.Path("chat_templates", "templates.json")));
        return [.. doc.RootElement.EnumerateArray().Select(e => e.Clone())];
    });

    public static TheoryData<string, string, bool> Cases()
    {
        var data = new TheoryData<string, string, bool>();
        foreach (JsonElement t in Templates.Value)
        {
            foreach (JsonElement c in Expected(t.GetProperty("name").GetString()!).EnumerateArray())
                data.Add(t.GetProperty("name").GetString()!, c.GetProperty("conversation").GetString()!, c.GetProperty("add_generation_prompt").GetBoolean());
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Renders_as_transformers_apply_chat_template(string template, string conversation, bool addGenerationPrompt)
    {
        JsonElement meta = Templates.Value.Single(t => t.GetProperty("name").GetString() == template);
        ChatTemplate chat = Load(meta);
        JsonElement expected = Expected(template).EnumerateArray().Single(c =>
            c.GetProperty("conversation").GetString() == conversation && c.GetProperty("add_generation_prompt").GetBoolean() == addGenerationPrompt);
        JsonElement conv = Conversations.Value[conversation];
        IEnumerable<object?>? tools = conv.TryGetProperty("tools", out JsonElement t) ? t.EnumerateArray().Select(x => (object?)x) : null;
        ReferenceOutcome.Read(expected).AssertMatches(
            () => chat.Render(conv.GetProperty("messages").EnumerateArray().Select(m => (object?)m), addGenerationPrompt, tools),
            $"{template} / {conversation} / {addGenerationPrompt}");
    }

    [Fact]
    public void Every_major_family_is_covered()
    {
        string[] names = [.. Templates.Value.Select(t => t.GetProperty("name").GetString()!)];
        foreach (string family in new[] { "llama-3-", "llama-3.1", "llama-3.2", "qwen2-", "qwen2.5", "mistral-7b-instruct-v0.1", "mistral-7b-instruct-v0.2", "mistral-7b-instruct-v0.3", "gemma-7b", "gemma-3", "phi-3-mini", "phi-3.5" })
            Assert.Contains(names, n => n.StartsWith(family, StringComparison.Ordinal));
    }

    [Fact]
    public void A_parsed_template_renders_a_conversation_twice_alike_and_from_many_threads()
    {
        ChatTemplate chat = Load(Templates.Value.Single(t => t.GetProperty("name").GetString() == "llama-3.1-8b-instruct"));
        ChatMessage[] messages = [new("system", "S"), new("user", "Hi"), new("assistant", "Yo"), new("user", "More")];
        string first = chat.Apply(messages, true);
        string[] results = new string[64];
        Parallel.For(0, results.Length, i => results[i] = chat.Apply(messages, true));
        Assert.All(results, r => Assert.Equal(first, r));
    }

    private static ChatTemplate Load(JsonElement meta)
    {
        string text = File.ReadAllText(RepoFixtures.Path("chat_templates", meta.GetProperty("file").GetString()!));
        var tokens = meta.GetProperty("special_tokens").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!);
        return ChatTemplate.Parse(text, tokens, meta.GetProperty("name").GetString(), new FixedClock(ReferenceClock));
    }

    private static JsonElement Expected(string template)
    {
        using JsonDocument doc = JsonDocument.Parse(File.ReadAllText(RepoFixtures.Path("chat_templates", "expected", template + ".json")));
        return doc.RootElement.GetProperty("cases").Clone();
    }
}
