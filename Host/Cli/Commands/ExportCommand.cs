using System.CommandLine;
using PeftHost.Engine.Export;
using PeftHost.Formats.BitsAndBytes;
using PeftHost.Formats.Gguf;

namespace PeftHost.Cli.Commands;

/// <summary>
/// `pefthost export --model DIR [--adapter [NAME=]DIR]... --format gguf --quant f32|f16|q8_0|q4_0 --out FILE.gguf`:
/// merges the adapters into the base weights and writes a llama.cpp-compatible GGUF file.
/// `pefthost export --model DIR --adapter DIR --format gguf-lora [--quant f32|f16|q8_0] --out FILE.gguf`:
/// one adapter its method writes as low-rank pairs (LoRA, AdaLoRA) as llama.cpp's GGUF-LoRA, applied unmerged by llama.cpp, LLamaSharp, Ollama and our Vulkan path.
/// </summary>
internal static class ExportCommand
{
    public static Command Create(Option<string> pluginsOption)
    {
        var model = new Option<string>("--model") { Description = "Model folder (config.json + model.safetensors): the base, also for gguf-lora (names, Q/K permutation).", Required = true };
        var adapter = new Option<string[]>("--adapter") { Description = "PEFT adapter folder, [NAME=]DIR; gguf: repeat for several (all merged); gguf-lora: exactly one." };
        var format = new Option<string>("--format") { Description = "gguf (the merged model) | gguf-lora (one LoRA adapter, unmerged).", DefaultValueFactory = _ => "gguf" };
        var quant = new Option<string?>("--quant") { Description = "gguf: f32 | f16 | q8_0 | q4_0 (default f16); gguf-lora: f32 | f16 | q8_0 (default f32)." };
        var output = new Option<string>("--out") { Description = "Output file (.gguf).", Required = true };
        var command = new Command("export", "Write the model (adapters merged) or a LoRA adapter as GGUF (llama.cpp's format).") { model, adapter, format, quant, output };
        // gguf: the base as a QLoRA adapter was trained on it (quantized, then decoded before the merge and the GGUF --quant).
        QuantizationArguments baseQuantization = new QuantizationArguments().AddTo(command);
        command.SetAction(parse =>
        {
            string[] adapters = parse.GetValue(adapter) ?? [];
            string? q = parse.GetValue(quant);
            BitsAndBytesConfig? onLoad = baseQuantization.Read(parse);
            if (onLoad is not null && parse.GetValue(format) == "gguf-lora")
                return CliErrors.Fail("--load-in-4bit / --load-in-8bit are for --format gguf: a GGUF-LoRA file holds the adapter alone.");
            switch (parse.GetValue(format))
            {
                case "gguf":
                    GgufExportSummary s = LlamaGgufExporter.Export(parse.GetValue(model)!, AdapterArguments.Parse(adapters),
                        parse.GetValue(pluginsOption)!, GgufQuant.Parse(q ?? "f16"), parse.GetValue(output)!, onLoad);
                    Console.WriteLine($"{s.Name}: llama, {s.Layers} layers, {GgmlTypeTraits.Name(s.Quant)}, {s.MergedAdapters} adapter(s) merged -> {parse.GetValue(output)}");
                    return 0;
                case "gguf-lora":
                    if (adapters.Length != 1) return CliErrors.Fail($"--format gguf-lora writes one adapter: give exactly one --adapter ({adapters.Length} given).");
                    GgufLoraSummary l = GgufLoraExporter.Export(parse.GetValue(model)!, AdapterArguments.Parse(adapters[0], 0).Folder,
                        parse.GetValue(pluginsOption)!, GgufQuant.Parse(q ?? "f32"), parse.GetValue(output)!);
                    Console.WriteLine(FormattableString.Invariant(
                        $"{l.Name}: GGUF-LoRA for llama, {l.Weights} weights, rank {string.Join("/", l.Ranks)}, alpha {l.Alpha}, {GgmlTypeTraits.Name(l.Quant)} -> {parse.GetValue(output)}"));
                    return 0;
                default:
                    return CliErrors.Fail($"unknown format '{parse.GetValue(format)}': use gguf or gguf-lora.");
            }
        });
        return command;
    }
}
