using System.CommandLine;
using System.Text.Json;
using PeftHost.Engine.Inference;
using PeftHost.Engine.Inference.Backends;

namespace PeftHost.Cli.Commands;

/// <summary>
/// `pefthost bench generate [--json] [--size medium] [--backends torch,llama,vulkan]`: prefill and decode
/// tokens/s of every backend and weight type, with and without an unmerged LoRA adapter (<see cref="GenerateBenchmark"/>).
/// </summary>
internal static class BenchGenerateCommand
{
    public static Command Create(Option<string> pluginsOption)
    {
        var json = new Option<bool>("--json") { Description = "Print one JSON object (last line)." };
        var size = new Option<string>("--size") { Description = "make-model llama size.", DefaultValueFactory = _ => "medium" };
        var backends = new Option<string>("--backends") { Description = "Comma-separated backends to run.", DefaultValueFactory = _ => "torch,llama,vulkan" };
        var command = new Command("generate", "Prefill and decode tokens/s on every backend (torch, llama, vulkan), with and without LoRA.") { json, size, backends };
        command.SetAction(parse =>
        {
            InferenceBackendKind[] kinds = [.. parse.GetValue(backends)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(InferenceBackendKinds.Parse)];
            bool asJson = parse.GetValue(json);
            var result = GenerateBenchmark.Run(parse.GetValue(size)!, parse.GetValue(pluginsOption)!, kinds, line => (asJson ? Console.Error : Console.Out).WriteLine(line));
            if (asJson) Console.WriteLine(result.ToJsonString(new JsonSerializerOptions { WriteIndented = false }));
            return 0;
        });
        return command;
    }
}
