using System.CommandLine;
using PeftHost.Engine.Export;
using PeftHost.Engine.Inference;
using PeftHost.Engine.Plugins;
using PeftHost.Formats.Gguf;

namespace PeftHost.Cli.Commands;

/// <summary>
/// `pefthost export --model DIR [--adapter [NAME=]DIR]... --format gguf --quant f32|f16|q8_0|q4_0 --out FILE.gguf`:
/// merges the adapters into the base weights and writes a llama.cpp-compatible GGUF file.
/// </summary>
internal static class ExportCommand
{
    public static Command Create(Option<string> pluginsOption)
    {
        var model = new Option<string>("--model") { Description = "Model folder (config.json + model.safetensors).", Required = true };
        var adapter = new Option<string[]>("--adapter") { Description = "PEFT adapter folder, [NAME=]DIR; repeat for several (all merged)." };
        var format = new Option<string>("--format") { Description = "gguf.", DefaultValueFactory = _ => "gguf" };
        var quant = new Option<string>("--quant") { Description = "f32 | f16 | q8_0 | q4_0.", DefaultValueFactory = _ => "f16" };
        var output = new Option<string>("--out") { Description = "Output file (.gguf).", Required = true };
        var command = new Command("export", "Merge adapters and write the model as GGUF (llama.cpp's format).") { model, adapter, format, quant, output };
        command.SetAction(parse =>
        {
            try
            {
                if (parse.GetValue(format) != "gguf") return CliErrors.Fail($"unknown format '{parse.GetValue(format)}': only gguf is supported.");
                GgmlType type = GgufQuant.Parse(parse.GetValue(quant)!);
                string[] adapters = parse.GetValue(adapter) ?? [];
                GgufExportSummary s = LlamaGgufExporter.Export(parse.GetValue(model)!, [.. adapters.Select(LogitsRunner.AdapterSpec.Parse)],
                    parse.GetValue(pluginsOption)!, type, parse.GetValue(output)!);
                Console.WriteLine($"{s.Name}: llama, {s.Layers} layers, {GgmlTypeTraits.Name(s.Quant)}, {s.MergedAdapters} adapter(s) merged -> {parse.GetValue(output)}");
                return 0;
            }
            catch (Exception e) when (CliErrors.IsUserError(e))
            {
                return CliErrors.Fail(e.Message);
            }
        });
        return command;
    }
}
