using System.Text.Json;
using PeftHost.Formats.Tests.Support;
using PeftHost.Tokenizers.Jinja;
using Xunit;

namespace PeftHost.Formats.Tests.Tokenizers.Jinja;

/// <summary>
/// Randomly generated templates (expressions under every whitespace control; nested statements, macros,
/// call blocks, namespaces) with what jinja2 rendered or raised, from tools/chat-templates/fuzz_cases.py:
/// our interpreter must give the same text, or fail with the same Python class.
/// </summary>
public sealed class JinjaFuzzCaseTests
{
    private static readonly Lazy<(List<JsonElement> Cases, Dictionary<string, Dictionary<string, object?>> Variables)> Fixture = new(() =>
    {
        using JsonDocument doc = JsonDocument.Parse(File.ReadAllText(RepoFixtures.Path("jinja", "fuzz_cases.json")));
        var variables = doc.RootElement.GetProperty("variables").EnumerateObject().ToDictionary(
            g => g.Name, g => g.Value.EnumerateObject().ToDictionary(p => p.Name, p => (object?)p.Value.Clone()));
        return ([.. doc.RootElement.GetProperty("cases").EnumerateArray().Select(c => c.Clone())], variables);
    });

    public static TheoryData<int> Indexes()
    {
        var data = new TheoryData<int>();
        for (int i = 0; i < Fixture.Value.Cases.Count; i++) data.Add(i);
        return data;
    }

    [Theory]
    [MemberData(nameof(Indexes))]
    public void Renders_as_jinja2_does(int index)
    {
        JsonElement c = Fixture.Value.Cases[index];
        string template = c.GetProperty("template").GetString()!;
        Dictionary<string, object?> variables = Fixture.Value.Variables[c.GetProperty("generator").GetString()!];
        JinjaEnvironment env = JinjaReferenceCaseTests.ChatEnvironment();
        ReferenceOutcome.Read(c).AssertMatches(() => env.Parse(template).Render(variables), $"case {index}: {template}");
    }
}
