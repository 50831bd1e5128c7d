using System.Text.Json;
using PeftHost.Formats.Tests.Support;
using PeftHost.Tokenizers;
using PeftHost.Tokenizers.Jinja;
using Xunit;

namespace PeftHost.Formats.Tests.Tokenizers.Jinja;

/// <summary>
/// Every construct of the interpreter against jinja2 itself: tests/fixtures/jinja/cases.json holds each case's
/// template, variables, environment (transformers' chat one or Jinja's defaults) and what jinja2 3.1.2 rendered
/// or raised (made by tools/chat-templates/render_references.py). Outputs must match byte for byte; errors
/// must be the same Python class (and, for syntax errors, on the same line).
/// </summary>
public sealed class JinjaReferenceCaseTests
{
    private static readonly Lazy<Dictionary<string, JsonElement>> Cases = new(() =>
    {
        using JsonDocument doc = JsonDocument.Parse(File.ReadAllText(RepoFixtures.Path("jinja", "cases.json")));
        return doc.RootElement.GetProperty("cases").EnumerateArray().ToDictionary(c => c.GetProperty("name").GetString()!, c => c.Clone());
    });

    private static readonly JinjaEnvironment Plain = new() { LoopControls = true };

    public static TheoryData<string> Names()
    {
        var data = new TheoryData<string>();
        foreach (string name in Cases.Value.Keys) data.Add(name);
        return data;
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void Renders_as_jinja2_does(string name)
    {
        JsonElement c = Cases.Value[name];
        JinjaEnvironment env = c.GetProperty("environment").GetString() == "chat" ? ChatEnvironment() : Plain;
        string template = c.GetProperty("template").GetString()!;
        var variables = c.GetProperty("variables").EnumerateObject().ToDictionary(p => p.Name, p => (object?)p.Value);
        var clock = new FixedClock(new DateTime(2024, 9, 17, 14, 5, 9));
        ReferenceOutcome.Read(c).AssertMatches(() => env.Parse(template).Render(variables, clock), name);
    }

    [Fact]
    public void The_cases_cover_every_construct_of_the_brief()
    {
        // A guard against the fixture losing cases: each group below must stay represented.
        string[] groups = ["trim_blocks", "lstrip_blocks", "raw", "loop variables", "for-else", "tuple unpacking", "namespace", "macro", "call block",
            "block set", "slicing", "tojson", "strftime_now", "raise_exception", "syntax:", "undefined", "string strip", "dict methods", "select and reject"];
        foreach (string g in groups) Assert.Contains(Cases.Value.Keys, k => k.Contains(g, StringComparison.Ordinal));
        Assert.True(Cases.Value.Count >= 130, $"only {Cases.Value.Count} cases");
    }

    internal static JinjaEnvironment ChatEnvironment() => ChatTemplateEnvironment.Instance;
}
