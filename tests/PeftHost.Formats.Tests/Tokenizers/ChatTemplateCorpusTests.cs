using System.Text.Json;
using PeftHost.Formats.Tests.Support;
using PeftHost.Formats.Tests.Tokenizers.Jinja;
using PeftHost.Tokenizers;
using Xunit;

namespace PeftHost.Formats.Tests.Tokenizers;

/// <summary>
/// A wider check: every distinct chat template of 166 Hugging Face models (openvino.genai's collection) and of
/// llama.cpp's models/templates (tests/fixtures/chat_templates/corpus.json) on three conversations, against
/// transformers' environment running jinja2 (corpus_expected.json): same text, or the same kind of failure.
/// </summary>
public sealed class ChatTemplateCorpusTests
{
    private static readonly Lazy<List<JsonElement>> Corpus = new(() => Load("corpus.json", null));

    private static readonly Lazy<List<JsonElement>> Expected = new(() => Load("corpus_expected.json", "templates"));

    private static readonly Lazy<Dictionary<string, JsonElement>> Conversations = new(() =>
        Load("conversations.json", null).ToDictionary(c => c.GetProperty("id").GetString()!));

    public static TheoryData<int> Indexes()
    {
        var data = new TheoryData<int>();
        for (int i = 0; i < Corpus.Value.Count; i++) data.Add(i);
        return data;
    }

    [Theory]
    [MemberData(nameof(Indexes))]
    public void Renders_as_transformers_apply_chat_template(int index)
    {
        JsonElement entry = Corpus.Value[index];
        JsonElement expected = Expected.Value[index];
        string model = entry.GetProperty("model").GetString()!;
        Assert.Equal(model, expected.GetProperty("model").GetString());
        var tokens = entry.GetProperty("special_tokens").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!);
        ChatTemplate chat = ChatTemplate.Deferred(entry.GetProperty("template").GetString()!, tokens, model, new FixedClock(new DateTime(2024, 9, 17, 14, 5, 9)));
        foreach (JsonElement c in expected.GetProperty("cases").EnumerateArray())
        {
            JsonElement conv = Conversations.Value[c.GetProperty("conversation").GetString()!];
            bool gen = c.GetProperty("add_generation_prompt").GetBoolean();
            IEnumerable<object?>? tools = conv.TryGetProperty("tools", out JsonElement t) ? t.EnumerateArray().Select(x => (object?)x) : null;
            ReferenceOutcome.Read(c).AssertMatches(
                () => chat.Render(conv.GetProperty("messages").EnumerateArray().Select(m => (object?)m), gen, tools),
                $"{model} / {c.GetProperty("conversation").GetString()} / {gen}");
        }
    }

    private static List<JsonElement> Load(string file, string? property)
    {
        using JsonDocument doc = JsonDocument.Parse(File.ReadAllText(RepoFixtures.Path("chat_templates", file)));
        JsonElement root = property is null ? doc.RootElement : doc.RootElement.GetProperty(property);
        return [.. root.EnumerateArray().Select(e => e.Clone())];
    }
}
