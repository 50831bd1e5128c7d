using System.CommandLine;
using PeftHost.Engine.Export;
using PeftHost.Engine.Inference;
using PeftHost.Engine.Inference.Backends;
using PeftHost.Engine.Runtime;
using PeftHost.Models.Checkpoint;
using TorchSharp;

namespace PeftHost.Cli.Commands;

/// <summary>
/// `pefthost logits --model DIR [--adapter [NAME=]DIR]... --inputs FILE.json --out FILE.safetensors [--backend torch|llama|vulkan]`:
/// runs a Hugging Face model folder (with PEFT adapters) and writes the logits as safetensors. torch runs
/// padded batches, classifiers and --merge (<see cref="LogitsRunner"/>); llama and vulkan run unpadded
/// causal-LM rows through <see cref="IInferenceBackend"/> (<see cref="BackendLogits"/>), LoRA unmerged.
/// </summary>
internal static class LogitsCommand
{
    public static Command Create(Option<string> pluginsOption)
    {
        var model = new Option<string>("--model") { Description = "Model folder (config.json + model.safetensors or a sharded index).", Required = true };
        var adapter = new Option<string[]>("--adapter") { Description = "PEFT adapter folder, [NAME=]DIR; repeat for several (all active).", AllowMultipleArgumentsPerToken = false };
        var adapterScale = new Option<string[]>("--adapter-scale") { Description = "NAME=SCALE: run that adapter at this scale (llama, vulkan).", AllowMultipleArgumentsPerToken = false };
        var merge = new Option<bool>("--merge") { Description = "torch: merge every active adapter into the base weights before the forward." };
        var inputs = new Option<string>("--inputs") { Description = "JSON: {\"input_ids\": [[...]], \"attention_mask\"?, \"token_type_ids\"?}.", Required = true };
        var output = new Option<string>("--out") { Description = "Output .safetensors (one float32 tensor 'logits').", Required = true };
        var backend = new Option<string>("--backend") { Description = "torch | llama | vulkan.", DefaultValueFactory = _ => "torch" };
        var device = new Option<string>("--device") { Description = "torch: cpu | cuda | cuda:N.", DefaultValueFactory = _ => "cpu" };
        var dtype = new Option<string>("--dtype") { Description = "torch: f32 | f16 | bf16.", DefaultValueFactory = _ => "f32" };
        var threads = new Option<int?>("--threads") { Description = "CPU threads (torch: intra-op; llama: decode threads; default: all)." }.AtLeast(1);
        var quant = new Option<string>("--quant") { Description = "llama, vulkan: weight type of the exported base, f32 | f16 | q8_0 | q4_0.", DefaultValueFactory = _ => "f32" };
        var gguf = new Option<string?>("--gguf") { Description = "llama, vulkan: run this base GGUF instead of exporting one from --model." };
        var cache = new Option<string?>("--cache") { Description = "llama, vulkan: folder of exported GGUF files (default $XDG_CACHE_HOME/pefthost/gguf)." };
        var command = new Command("logits", "Run a model on token ids and write its logits (safetensors).")
        {
            model, adapter, adapterScale, merge, inputs, output, backend, device, dtype, threads, quant, gguf, cache,
        };
        QuantizationArguments quantization = new QuantizationArguments().AddTo(command);
        command.SetAction(parse =>
        {
            InferenceBackendKind kind = InferenceBackendKinds.Parse(parse.GetValue(backend)!);
            IReadOnlyList<AdapterSpec> adapters = AdapterArguments.Parse(parse.GetValue(adapter), parse.GetValue(adapterScale));
            PeftHost.Formats.BitsAndBytes.BitsAndBytesConfig? bnb = quantization.Read(parse);
            if (kind != InferenceBackendKind.Torch)
            {
                if (parse.GetValue(merge)) return CliErrors.Fail($"--merge is for --backend torch: the {kind.Name()} backend applies LoRA unmerged and merges only what it cannot apply.");
                var options = new InferenceBackendOptions
                {
                    Kind = kind,
                    ModelFolder = parse.GetValue(model)!,
                    Adapters = adapters,
                    PluginsFolder = parse.GetValue(pluginsOption)!,
                    Quant = GgufQuant.Parse(parse.GetValue(quant)!),
                    GgufFile = parse.GetValue(gguf),
                    Threads = parse.GetValue(threads),
                    CacheDirectory = parse.GetValue(cache),
                    Quantization = bnb,
                };
                using IInferenceBackend opened = InferenceBackends.Open(options);
                foreach (MergedAdapter m in opened.MergedAdapters) Console.Error.WriteLine($"[adapter '{m.Name}' merged into the base: {m.Reason}]");
                long[] backendShape = BackendLogits.Run(opened, parse.GetValue(inputs)!, parse.GetValue(output)!);
                Console.WriteLine($"logits [{string.Join(", ", backendShape)}] -> {parse.GetValue(output)} ({opened.Description})");
                return 0;
            }
            if (parse.GetValue(merge) && adapters.Count == 0) return CliErrors.Fail("--merge needs at least one --adapter to merge.");
            if (parse.GetValue(threads) is int t) torch.set_num_threads(t);
            long[] shape = LogitsRunner.Run(parse.GetValue(model)!, adapters, parse.GetValue(inputs)!, parse.GetValue(output)!,
                parse.GetValue(pluginsOption)!, TensorBridge.ParseDType(parse.GetValue(dtype)!), TorchDevice.Parse(parse.GetValue(device)!), parse.GetValue(merge), bnb);
            Console.WriteLine($"logits [{string.Join(", ", shape)}] -> {parse.GetValue(output)}");
            return 0;
        });
        return command;
    }
}
