using System.CommandLine;
using PeftHost.Engine.Inference;
using PeftHost.Formats.BitsAndBytes;
using PeftHost.Models.Checkpoint;

namespace PeftHost.Cli.Commands;

/// <summary>
/// `pefthost merge --model DIR --adapter [NAME=]DIR [...] --out DIR [--dtype f32|f16|bf16] [--force]`:
/// writes a plain Hugging Face model folder with the adapters merged into the weights.
/// </summary>
internal static class MergeCommand
{
    public static Command Create(Option<string> pluginsOption)
    {
        var model = new Option<string>("--model") { Description = "Base model folder.", Required = true };
        var adapter = new Option<string[]>("--adapter") { Description = "PEFT adapter folder, [NAME=]DIR; repeat for several (all merged).", Required = true, AllowMultipleArgumentsPerToken = false };
        var output = new Option<string>("--out") { Description = "Output folder (must be empty or absent unless --force).", Required = true };
        var dtype = new Option<string?>("--dtype") { Description = "f32 | f16 | bf16 (default: the base's torch_dtype)." };
        var force = new Option<bool>("--force") { Description = "Overwrite a non-empty output folder." };
        var quantize = new Option<string?>("--quantize") { Description = "nf4 | fp4 | int8: quantize the merged linear layers and write bitsandbytes' layout (default: float, a quantized base decoded first)." };
        var command = new Command("merge", "Merge adapters into the base weights and write a plain Hugging Face model folder.") { model, adapter, output, dtype, force, quantize };
        // The base as a QLoRA adapter was trained on it (quantized, then decoded for the merge); --double-quant also serves --quantize nf4|fp4.
        QuantizationArguments baseQuantization = new QuantizationArguments().AddTo(command);
        command.SetAction(parse =>
        {
            string[] adapters = parse.GetValue(adapter) ?? [];
            string? d = parse.GetValue(dtype);
            BitsAndBytesConfig? onLoad = baseQuantization.Read(parse, doubleQuantHasOtherUse: true);
            string? q = parse.GetValue(quantize);
            // --double-quant with --load-in-4bit is the base's; it is the output's as well only with a 4-bit --quantize.
            bool outputDoubleQuant = baseQuantization.DoubleQuant(parse) && !(onLoad is { LoadIn4Bit: true } && q is null or "int8");
            MergedModelWriter.Result result = MergedModelWriter.Merge(parse.GetValue(model)!, AdapterArguments.Parse(adapters), parse.GetValue(output)!,
                parse.GetValue(pluginsOption)!, d is null ? null : TensorBridge.ParseDType(d), parse.GetValue(force),
                quantize: QuantizationArguments.ForOutput(q, outputDoubleQuant), baseQuantization: onLoad);
            Console.WriteLine(FormattableString.Invariant(
                $"merged {adapters.Length} adapter(s): {result.Tensors} tensors, {result.Bytes / 1e6:F1} MB {result.DType} in {string.Join(", ", result.Files)}; copied {(result.Copied.Count == 0 ? "nothing else" : string.Join(", ", result.Copied))} -> {parse.GetValue(output)}"));
            return 0;
        });
        return command;
    }
}
