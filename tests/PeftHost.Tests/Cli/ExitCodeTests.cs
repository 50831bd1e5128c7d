using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using PeftHost.Engine.Peft;
using PeftHost.Engine.Plugins;
using PeftHost.Models;
using PeftHost.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;
using Xunit;

namespace PeftHost.Tests.CommandLine;

/// <summary>
/// The README's exit codes, command by command: 0 success, 1 failure (I/O, a plugin fault), 2 usage or input
/// error (parse errors included), 130 interrupted; an error is one line on stderr naming what is wrong, with
/// the stack trace only under --verbose.
/// </summary>
public class ExitCodeTests
{
    private static string BaseLlama => Conformance.Case("base_llama");

    private static string LoraAdapter => Path.Combine(Conformance.Case("lora_qv"), "adapter");

    /// <summary>Parse errors of every command, and option values out of range (checked while parsing): exit 2, one line naming the option.</summary>
    public static TheoryData<string[], string> ParseErrors() => new()
    {
        { [], "Required command" },
        { ["nonsense"], "nonsense" },
        { ["doctor", "--bogus"], "--bogus" },
        { ["plugins", "--json", "extra"], "extra" },
        { ["demo", "--bogus"], "--bogus" },
        { ["adapter", "inspect"], "inspect" },
        { ["logits", "--model", "m", "--out", "o"], "--inputs" },
        { ["generate", "--model", "m", "--prompt", "p", "--max-new-tokens", "many"], "many" },
        { ["generate", "--model", "m", "--prompt", "p", "--threads", "0"], "--threads" },
        { ["merge", "--model", "m", "--out", "o"], "--adapter" },
        { ["make-model", "--out", "o"], "--arch" },
        { ["export", "--model", "m"], "--out" },
        { ["bench", "reload", "--count", "0"], "--count" },
        { ["bench", "models", "--threads", "0"], "--threads" },
        { ["bench", "lora", "--rounds", "0"], "--rounds" },
        { ["bench", "memory", "--rounds", "0"], "--rounds" },
        { ["bench", "qlora", "--threads", "-1"], "--threads" },
        { ["bench", "vulkan", "--decode-tokens", "0"], "--decode-tokens" },
        { ["bench", "generate", "--bogus"], "--bogus" },
        { ["bench", "chat-template", "--json", "x"], "x" },
    };

    [Theory]
    [MemberData(nameof(ParseErrors))]
    public void A_parse_error_is_exit_2_and_one_line_naming_it(string[] args, string named)
    {
        (int code, string stdout, string stderr) = Cli.Run(args);
        Assert.True(code == 2, $"exit {code}: {stderr}{stdout}");
        string line = Assert.Single(Lines(stderr));
        Assert.StartsWith("error: ", line);
        Assert.Contains(named, line);
        Assert.Contains("--help", line);
    }

    /// <summary>A bad input of each command that reads one: exit 2, one line naming the file, folder or field.</summary>
    [Fact]
    public void A_bad_input_is_exit_2_and_one_line_naming_the_file_or_field()
    {
        using var dir = new ScratchFolder();
        string notJson = Write(dir, "bad/adapter_config.json", "{ \"peft_type\": ");
        string badIds = Write(dir, "ids.json", "{\"input_ids\": [[1, 2], [3, 999]]}");
        string ragged = Write(dir, "ragged.json", "{\"input_ids\": [[1, 2], [3]]}");
        string output = Path.Combine(dir.Path, "logits.safetensors");
        string nonEmpty = Path.Combine(dir.Path, "nonempty");
        Write(dir, "nonempty/file.txt", "x");
        string missing = Path.Combine(dir.Path, "missing");

        ExpectInputError(["adapter", "inspect", Path.GetDirectoryName(notJson)!], notJson, "not valid JSON");
        ExpectInputError(["adapter", "inspect", missing], missing);
        ExpectInputError(["plugins", "--plugins", missing], missing);
        ExpectInputError(["logits", "--model", BaseLlama, "--inputs", badIds, "--out", output], badIds, "999", "vocabulary");
        ExpectInputError(["logits", "--model", BaseLlama, "--inputs", ragged, "--out", output], ragged, "row 1");
        ExpectInputError(["logits", "--model", missing, "--inputs", badIds, "--out", output], "config.json");
        ExpectInputError(["logits", "--model", BaseLlama, "--inputs", Path.Combine(missing, "inputs.json"), "--out", output], "inputs.json");
        ExpectInputError(["logits", "--model", BaseLlama, "--adapter", missing, "--inputs", Path.Combine(BaseLlama, "inputs.json"), "--out", output], missing);
        ExpectInputError(["generate", "--model", BaseLlama, "--prompt", "p", "--temperature", "-1"], "--temperature");
        string tiny = Path.Combine(dir.Path, "tiny");
        ModelPresets.Write("llama", "tiny", tiny, 0);
        ExpectInputError(["generate", "--model", tiny, "--prompt", "hello", "--max-new-tokens", "500"], "max_new_tokens 500", "context of 128");
        ExpectInputError(["generate", "--model", tiny, "--prompt", "hello", "--max-new-tokens", "500", "--backend", "llama", "--cache", Path.Combine(dir.Path, "cache")], "context of 128");
        ExpectInputError(["generate", "--model", tiny, "--prompt", "hello", "--stop", ""], "stop string is empty");
        ExpectInputError(["generate", "--model", BaseLlama, "--prompt", "p", "--backend", "tpu"], "tpu");
        ExpectInputError(["merge", "--model", BaseLlama, "--adapter", LoraAdapter, "--out", nonEmpty], nonEmpty, "--force");
        ExpectInputError(["make-model", "--arch", "resnet", "--out", Path.Combine(dir.Path, "m")], "--arch resnet");
        ExpectInputError(["export", "--model", BaseLlama, "--format", "onnx", "--out", Path.Combine(dir.Path, "m.gguf")], "onnx");
        ExpectInputError(["export", "--model", BaseLlama, "--adapter", missing, "--out", Path.Combine(dir.Path, "m.gguf")], missing);
        ExpectInputError(["bench", "chat-template", "--template", Path.Combine(missing, "t.jinja")], "t.jinja");
        ExpectInputError(["bench", "generate", "--backends", "torch,tpu"], "tpu");
        ExpectInputError(["bench", "vulkan", "--types", "q9_9"], "q9_9");
        ExpectInputError(["bench", "qlora", "--sizes", "huge"], "huge");
        Assert.False(File.Exists(output));
    }

    [Fact]
    public void Verbose_adds_the_stack_trace_to_the_one_line()
    {
        string missing = Path.Combine(Path.GetTempPath(), "pefthost-no-such-model");
        (int code, _, string stderr) = Cli.Run("logits", "--model", missing, "--inputs", "x.json", "--out", "y.safetensors", "--verbose");
        Assert.Equal(2, code);
        string[] lines = Lines(stderr);
        Assert.StartsWith("error: ", lines[0]);
        Assert.Contains(lines, l => l.TrimStart().StartsWith("at PeftHost.", StringComparison.Ordinal));
    }

    [Fact]
    public void An_output_that_cannot_be_written_is_exit_1_naming_the_file()
    {
        string output = "/dev/null/logits.safetensors"; // a path below a file: ENOTDIR on write
        (int code, _, string stderr) = Cli.Run("logits", "--model", BaseLlama, "--inputs", Path.Combine(BaseLlama, "inputs.json"), "--out", output);
        Assert.True(code == 1, $"exit {code}: {stderr}");
        string line = Assert.Single(Lines(stderr));
        Assert.StartsWith("error: Could not write '/dev/null/logits.safetensors'", line);
    }

    [Fact]
    public void A_plugin_fault_is_exit_1_naming_the_plugin_and_the_operation()
    {
        using var plugins = PluginDirs.Scratch("lora");
        PluginDirs.Copy(PluginDirs.Fixture("Faulty"), Path.Combine(plugins.Path, "faulty"));
        using var dir = new ScratchFolder();
        string adapter = Path.Combine(dir.Path, "faulty-adapter");
        (_, nn.Module model) = ModelFactory.Load(BaseLlama);
        using (model)
        using (var catalog = new PluginCatalog(new PluginCatalogOptions { PluginsDirectory = plugins.Path, HotReload = false }))
        {
            catalog.Scan();
            using var peft = new PeftModel(model, catalog);
            peft.AddAdapter("default", Configs.Faulty("forward"));
            peft.SavePretrained(adapter);
        }
        (int code, _, string stderr) = Cli.Run("logits", "--model", BaseLlama, "--adapter", adapter, "--inputs", Path.Combine(BaseLlama, "inputs.json"),
            "--out", Path.Combine(dir.Path, "l.safetensors"), "--plugins", plugins.Path);
        Assert.True(code == 1, $"exit {code}: {stderr}");
        string line = Assert.Single(Lines(stderr));
        Assert.Contains("Plugin 'faulty'", line);
        Assert.Contains("during forward", line);
        Assert.Contains("fixture forward failure", line);
    }

    [Fact]
    public async Task Ctrl_c_stops_a_generation_between_tokens_with_exit_130()
    {
        CancellationToken cancel = TestContext.Current.CancellationToken;
        using var dir = new ScratchFolder();
        string folder = Path.Combine(dir.Path, "endless");
        ModelPresets.Write("llama", "tiny", folder, 0);
        // No end-of-sequence token and a long context: the generation runs until it is interrupted.
        Patch(Path.Combine(folder, "config.json"), o => o["max_position_embeddings"] = 100_000);
        Patch(Path.Combine(folder, "tokenizer_config.json"), o => o["eos_token"] = null);
        Patch(Path.Combine(folder, "generation_config.json"), o => o.Remove("eos_token_id"));

        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in new[] { Cli.Dll, "generate", "--model", folder, "--prompt", "hello", "--max-new-tokens", "90000", "--temperature", "1", "--seed", "1" })
            psi.ArgumentList.Add(a);
        using Process p = Process.Start(psi)!;
        Task<string> stderr = p.StandardError.ReadToEndAsync(cancel);
        var buffer = new char[16];
        // Tokens are streaming: the handler is in place and the generation loop is running.
        Assert.True(await p.StandardOutput.ReadAsync(buffer, cancel) > 0, "no text was generated");
        Assert.Equal(0, Kill(p.Id, 2)); // SIGINT, as Ctrl+C sends it
        Task<string> rest = p.StandardOutput.ReadToEndAsync(cancel);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        timeout.CancelAfter(TimeSpan.FromSeconds(30));
        try { await p.WaitForExitAsync(timeout.Token); }
        catch (OperationCanceledException) { p.Kill(true); Assert.Fail("the generation did not stop after SIGINT"); }
        Assert.Equal(130, p.ExitCode);
        Assert.Equal("interrupted", Assert.Single(Lines(await stderr)));
        Assert.NotNull(await rest);
    }

    private static void ExpectInputError(string[] args, params string[] named)
    {
        (int code, string stdout, string stderr) = Cli.Run(args);
        string command = string.Join(' ', args);
        Assert.True(code == 2, $"pefthost {command}: exit {code}: {stderr}{stdout}");
        string[] lines = Lines(stderr);
        Assert.True(lines.Length == 1, $"pefthost {command}: {lines.Length} lines on stderr: {stderr}");
        Assert.StartsWith("error: ", lines[0]);
        foreach (string n in named) Assert.True(lines[0].Contains(n, StringComparison.Ordinal), $"pefthost {command}: '{lines[0]}' does not name {n}");
    }

    private static string[] Lines(string text) => text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    private static string Write(ScratchFolder dir, string relative, string content)
    {
        string path = Path.Combine(dir.Path, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, content);
        return path;
    }

    private static void Patch(string path, Action<JsonObject> change)
    {
        JsonObject o = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        change(o);
        File.WriteAllText(path, o.ToJsonString());
    }

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);
}
