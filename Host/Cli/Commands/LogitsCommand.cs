using System.CommandLine;
using PeftHost.Engine.Inference;
using PeftHost.Engine.Plugins;
using PeftHost.Engine.Runtime;
using PeftHost.Models.Checkpoint;
using TorchSharp;

namespace PeftHost.Cli.Commands;

/// <summary>
/// `pefthost logits --model DIR [--adapter [NAME=]DIR]... --inputs FILE.json --out FILE.safetensors`:
/// runs a Hugging Face model folder (with PEFT adapters) and writes the logits as safetensors.
/// </summary>
internal static class LogitsCommand
{
    public static Command Create(Option<string> pluginsOption)
    {
        var model = new Option<string>("--model") { Description = "Model folder (config.json + model.safetensors or a sharded index).", Required = true };
        var adapter = new Option<string[]>("--adapter") { Description = "PEFT adapter folder, [NAME=]DIR; repeat for several (all active).", AllowMultipleArgumentsPerToken = false };
        var merge = new Option<bool>("--merge") { Description = "Merge every active adapter into the base weights before the forward." };
        var inputs = new Option<string>("--inputs") { Description = "JSON: {\"input_ids\": [[...]], \"attention_mask\"?, \"token_type_ids\"?}.", Required = true };
        var output = new Option<string>("--out") { Description = "Output .safetensors (one float32 tensor 'logits').", Required = true };
        var backend = new Option<string>("--backend") { Description = "torch | vulkan.", DefaultValueFactory = _ => "torch" };
        var device = new Option<string>("--device") { Description = "cpu | cuda | cuda:N.", DefaultValueFactory = _ => "cpu" };
        var dtype = new Option<string>("--dtype") { Description = "f32 | f16 | bf16.", DefaultValueFactory = _ => "f32" };
        var threads = new Option<int?>("--threads") { Description = "Intra-op CPU threads (default: libtorch's choice)." };
        var quant = new Option<string>("--quant") { Description = "Vulkan backend weight type: f32 | f16 | q8_0 | q4_0.", DefaultValueFactory = _ => "f32" };
        var command = new Command("logits", "Run a model on token ids and write its logits (safetensors).") { model, adapter, merge, inputs, output, backend, device, dtype, threads, quant };
        command.SetAction(parse =>
        {
            try
            {
                string be = parse.GetValue(backend)!;
                if (be == "vulkan")
                {
                    // The vulkan backend always merges: it runs the exported (merged, quantized) model.
                    long[] vkShape = VulkanLogits.Run(parse.GetValue(model)!, [.. (parse.GetValue(adapter) ?? []).Select(LogitsRunner.AdapterSpec.Parse)],
                        parse.GetValue(inputs)!, parse.GetValue(output)!, parse.GetValue(pluginsOption)!, PeftHost.Engine.Export.GgufQuant.Parse(parse.GetValue(quant)!));
                    Console.WriteLine($"logits [{string.Join(", ", vkShape)}] -> {parse.GetValue(output)} (vulkan, {parse.GetValue(quant)})");
                    return 0;
                }
                if (be != "torch") return Fail($"unknown backend '{be}': use torch or vulkan.");
                string[] adapters = parse.GetValue(adapter) ?? [];
                if (parse.GetValue(merge) && adapters.Length == 0) return Fail("--merge needs at least one --adapter to merge.");
                if (parse.GetValue(threads) is int n)
                {
                    if (n < 1) return Fail("--threads must be at least 1.");
                    torch.set_num_threads(n);
                }
                long[] shape = LogitsRunner.Run(parse.GetValue(model)!, [.. adapters.Select(LogitsRunner.AdapterSpec.Parse)], parse.GetValue(inputs)!, parse.GetValue(output)!,
                    parse.GetValue(pluginsOption)!, TensorBridge.ParseDType(parse.GetValue(dtype)!), TorchDevice.Parse(parse.GetValue(device)!), parse.GetValue(merge));
                Console.WriteLine($"logits [{string.Join(", ", shape)}] -> {parse.GetValue(output)}");
                return 0;
            }
            catch (Exception e) when (e is ArgumentException or InvalidDataException or FileNotFoundException or DirectoryNotFoundException or NotSupportedException
                                           or KeyNotFoundException or PluginFaultException or PeftHost.Abstractions.Config.TunerConfigException
                                           or PeftHost.Formats.Gguf.GgufFormatException or PeftHost.Vulkan.Runtime.VulkanException)
            {
                return Fail(e.Message);
            }
        });
        return command;
    }

    private static int Fail(string message)
    {
        Console.Error.WriteLine("error: " + message);
        return 1;
    }
}
