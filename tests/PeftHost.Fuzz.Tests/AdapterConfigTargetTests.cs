using PeftHost.Fuzz.Targets;
using Xunit;

namespace PeftHost.Fuzz.Tests;

/// <summary>The adapter-config target reaches every plugin of the repository, a plugin added later included.</summary>
public sealed class AdapterConfigTargetTests
{
    [Fact]
    public void Every_plugin_of_the_repository_has_its_tuner_in_the_target()
    {
        string root = RepoRoot();
        string[] plugins = [.. Directory.GetDirectories(Path.Combine(root, "Plugins"))
            .SelectMany(d => Directory.GetFiles(d, "PeftHost.Plugins.*.csproj"))
            .Select(f => Path.GetFileNameWithoutExtension(f))];
        Assert.NotEmpty(plugins);
        HashSet<string> covered = [.. AdapterConfigTarget.Tuners.Select(t => t.GetType().Assembly.GetName().Name!)];
        string[] missing = [.. plugins.Where(p => !covered.Contains(p)).Order(StringComparer.Ordinal)];
        Assert.True(missing.Length == 0, $"plugins whose tuner AdapterConfigTarget.Tuners leaves out: {string.Join(", ", missing)}");
    }

    [Fact]
    public void Every_tuner_accepts_its_own_seed()
    {
        // Each seed but the hand-made lora-patterns.json (a combination PEFT refuses, there to reach the refusals) is a
        // config its method wrote (PEFT's, or ours for methods PEFT lacks): the tuner of its peft_type parses it.
        var refused = new List<string>();
        foreach (string file in Seeds.Files("adapter-config").Where(f => Path.GetFileName(f) != "lora-patterns.json"))
        {
            var json = (System.Text.Json.Nodes.JsonObject)System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(file))!;
            string type = (string)json["peft_type"]!;
            var tuner = AdapterConfigTarget.Tuners.Single(t => t.PeftType == type);
            try
            {
                tuner.ParseConfig(json);
            }
            catch (PeftHost.Abstractions.Config.TunerConfigException e)
            {
                refused.Add($"{Path.GetFileName(file)}: {e.Message}");
            }
        }
        Assert.True(refused.Count == 0, string.Join("; ", refused));
    }

    private static string RepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "Host.sln"))) return d.FullName;
        throw new DirectoryNotFoundException($"Host.sln not found above {AppContext.BaseDirectory}");
    }
}
