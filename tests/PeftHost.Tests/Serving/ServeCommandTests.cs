using System.Diagnostics;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using PeftHost.Tests.Support;
using Xunit;

namespace PeftHost.Tests.Serving;

/// <summary>`pefthost serve` as a user runs it: the address rule, name clashes, the stated defaults, a real run stopped with Ctrl+C.</summary>
public sealed partial class ServeCommandTests
{
    [Fact]
    public void Help_states_the_defaults()
    {
        (int code, string stdout, _) = Cli.Run("serve", "--help");
        Assert.Equal(0, code);
        foreach (string expected in new[] { "at most (torch). [default: 8]", "answered 429. [default: 64]", "ended (408). [default: 300]", "answered 413. [default: 1048576]", "API key. [default: 127.0.0.1]", "--api-key-file", "--adapter-root", "--served-model-name" })
            Assert.Contains(expected, stdout);
    }

    [Fact]
    public void A_public_address_without_a_key_and_a_name_clash_are_usage_errors()
    {
        using var models = new ServingModels();
        (int code, _, string stderr) = Cli.Run("serve", "--model", models.Model, "--host", "0.0.0.0");
        Assert.Equal(2, code);
        Assert.Equal("error: --host 0.0.0.0 is not a loopback address: serving beyond this machine needs an API key (--api-key KEY or --api-key-file FILE).", stderr.Trim());
        (code, _, stderr) = Cli.Run("serve", "--model", models.Model, "--adapter", "tiny-llama=" + models.Folder("sql"), "--plugins", models.Plugins);
        Assert.Equal(2, code);
        Assert.Contains("adapter 'tiny-llama' has the base model's served name 'tiny-llama'", stderr);
        (code, _, stderr) = Cli.Run("serve", "--model", models.Model, "--api-key", "k", "--api-key-file", "/nonexistent");
        Assert.Equal(2, code);
    }

    [Fact]
    public async Task It_serves_until_ctrl_c_and_exits_130()
    {
        using var models = new ServingModels();
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (string a in new[] { Cli.Dll, "serve", "--model", models.Model, "--adapter", "sql=" + models.Folder("sql"), "--plugins", models.Plugins, "--port", "0", "--threads", "1" })
            psi.ArgumentList.Add(a);
        using Process p = Process.Start(psi)!;
        try
        {
            Uri? address = null;
            var started = Stopwatch.StartNew();
            while (address is null && started.Elapsed < TimeSpan.FromMinutes(2) && await p.StandardError.ReadLineAsync(TestContext.Current.CancellationToken) is string line)
                if (Listening().Match(line) is { Success: true } m) address = new Uri(m.Groups[1].Value);
            Assert.NotNull(address);
            using var http = new HttpClient { BaseAddress = address };
            Assert.True((await http.GetAsync("/health", TestContext.Current.CancellationToken)).IsSuccessStatusCode);
            var body = new JsonObject { ["model"] = "sql", ["prompt"] = "hi", ["max_tokens"] = 5, ["temperature"] = 0 };
            using HttpResponseMessage r = await http.PostAsync("/v1/completions", ServerFixture.Json(body), TestContext.Current.CancellationToken);
            Assert.True(r.IsSuccessStatusCode, await r.Content.ReadAsStringAsync(TestContext.Current.CancellationToken));
            using (Process kill = Process.Start("kill", ["-INT", p.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])) await kill.WaitForExitAsync(TestContext.Current.CancellationToken);
            using var exit = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await p.WaitForExitAsync(exit.Token);
            Assert.Equal(130, p.ExitCode);
        }
        finally
        {
            if (!p.HasExited) p.Kill(entireProcessTree: true);
        }
    }

    [GeneratedRegex(@"on (http://127\.0\.0\.1:\d+)/? ")]
    private static partial Regex Listening();
}
