using System.CommandLine;
using PeftHost.Engine.Export;
using PeftHost.Engine.Inference;
using PeftHost.Engine.Inference.Backends;
using PeftHost.Engine.Runtime;
using PeftHost.Models.Checkpoint;
using PeftHost.Models.Generation;
using TorchSharp;

namespace PeftHost.Cli.Commands;

/// <summary>
/// `pefthost generate --model DIR [--adapter [NAME=]DIR]... --prompt TEXT [sampling options]
/// [--backend torch|llama|vulkan --quant ... --gguf FILE --adapter-scale NAME=S]`: streams the generated
/// text to stdout as it comes; what ran and a summary go to stderr. Every backend runs behind the
/// engine's <see cref="IInferenceBackend"/> (<see cref="TextGenerator.Run(InferenceBackendOptions, string, TextGenerationSettings, Action{string}?, Action{IInferenceBackend}?)"/>).
/// </summary>
internal static class GenerateCommand
{
    public static Command Create(Option<string> pluginsOption)
    {
        var model = new Option<string>("--model") { Description = "Model folder (config.json, weights, tokenizer.json or vocab.txt).", Required = true };
        var adapter = new Option<string[]>("--adapter") { Description = "PEFT adapter folder, [NAME=]DIR; repeat for several (all active).", AllowMultipleArgumentsPerToken = false };
        var adapterScale = new Option<string[]>("--adapter-scale") { Description = "NAME=SCALE: run that adapter at this scale (llama, vulkan).", AllowMultipleArgumentsPerToken = false };
        var prompt = new Option<string>("--prompt") { Description = "The prompt text.", Required = true };
        var chat = new Option<bool>("--chat") { Description = "Apply the tokenizer's chat template (the prompt is the user turn)." };
        var system = new Option<string?>("--system") { Description = "With --chat: a system message." };
        var maxNew = new Option<int>("--max-new-tokens") { Description = "Tokens to generate at most.", DefaultValueFactory = _ => 64 };
        var temperature = new Option<double>("--temperature") { Description = "0 = greedy (default); above 0 samples at that temperature.", DefaultValueFactory = _ => 0.0 };
        var topK = new Option<int>("--top-k") { Description = "When sampling: keep the k most likely tokens (0 = off).", DefaultValueFactory = _ => 0 };
        var topP = new Option<double>("--top-p") { Description = "When sampling: nucleus probability (1 = off).", DefaultValueFactory = _ => 1.0 };
        var repetition = new Option<double>("--repetition-penalty") { Description = "Penalty on tokens already present (1 = off).", DefaultValueFactory = _ => 1.0 };
        var seed = new Option<long?>("--seed") { Description = "Seed of the sampler (default: random)." };
        var stop = new Option<string[]>("--stop") { Description = "Stop when the text reaches this string (not printed); repeat for several.", AllowMultipleArgumentsPerToken = false };
        var backend = new Option<string>("--backend") { Description = "torch | llama | vulkan.", DefaultValueFactory = _ => "torch" };
        var device = new Option<string>("--device") { Description = "torch: cpu | cuda | cuda:N.", DefaultValueFactory = _ => "cpu" };
        var dtype = new Option<string>("--dtype") { Description = "torch: f32 | f16 | bf16.", DefaultValueFactory = _ => "f32" };
        var threads = new Option<int?>("--threads") { Description = "CPU threads (torch: intra-op; llama: decode threads; default: all)." }.AtLeast(1);
        var quant = new Option<string>("--quant") { Description = "llama, vulkan: weight type of the exported base, f32 | f16 | q8_0 | q4_0.", DefaultValueFactory = _ => "q4_0" };
        var gguf = new Option<string?>("--gguf") { Description = "llama, vulkan: run this base GGUF instead of exporting one from --model." };
        var cache = new Option<string?>("--cache") { Description = "llama, vulkan: folder of exported GGUF files (default $XDG_CACHE_HOME/pefthost/gguf)." };
        var command = new Command("generate", "Generate text from a prompt, streamed as it comes.")
        {
            model, adapter, adapterScale, prompt, chat, system, maxNew, temperature, topK, topP, repetition, seed, stop, backend, device, dtype, threads, quant, gguf, cache,
        };
        QuantizationArguments quantization = new QuantizationArguments().AddTo(command);
        command.SetAction(parse =>
        {
            InferenceBackendKind kind = InferenceBackendKinds.Parse(parse.GetValue(backend)!);
            if (parse.GetValue(maxNew) < 1) return CliErrors.Fail("--max-new-tokens must be at least 1.");
            double t = parse.GetValue(temperature);
            if (t < 0) return CliErrors.Fail("--temperature must be 0 (greedy) or positive.");
            if (parse.GetValue(topK) < 0) return CliErrors.Fail("--top-k must be 0 (off) or positive.");
            double p = parse.GetValue(topP);
            if (p <= 0 || p > 1) return CliErrors.Fail("--top-p must be in (0, 1].");
            if (parse.GetValue(repetition) <= 0) return CliErrors.Fail("--repetition-penalty must be positive.");
            if (parse.GetValue(threads) is int n && kind == InferenceBackendKind.Torch) torch.set_num_threads(n);
            var settings = new TextGenerationSettings
            {
                Chat = parse.GetValue(chat),
                SystemPrompt = parse.GetValue(system),
                StopStrings = parse.GetValue(stop) ?? [],
                Generation = new GenerationOptions
                {
                    MaxNewTokens = parse.GetValue(maxNew),
                    DoSample = t > 0,
                    Temperature = t > 0 ? t : 1.0,
                    TopK = parse.GetValue(topK),
                    TopP = p,
                    RepetitionPenalty = parse.GetValue(repetition),
                    Seed = parse.GetValue(seed),
                },
            };
            var options = new InferenceBackendOptions
            {
                Kind = kind,
                ModelFolder = parse.GetValue(model)!,
                Adapters = AdapterArguments.Parse(parse.GetValue(adapter), parse.GetValue(adapterScale)),
                PluginsFolder = parse.GetValue(pluginsOption)!,
                DType = TensorBridge.ParseDType(parse.GetValue(dtype)!),
                Device = TorchDevice.Parse(parse.GetValue(device)!),
                Quant = GgufQuant.Parse(parse.GetValue(quant)!),
                GgufFile = parse.GetValue(gguf),
                Threads = parse.GetValue(threads),
                CacheDirectory = parse.GetValue(cache),
                Quantization = quantization.Read(parse),
            };
            // Generated text is UTF-8 whatever the locale says (a C locale would print ? for every non-ASCII character).
            Console.OutputEncoding = new System.Text.UTF8Encoding(false);
            TextWriter output = Console.Out;
            void Print(string piece)
            {
                // Ctrl+C stops the generation between tokens (exit 130), after what was printed so far.
                CliInvocation.Cancellation.ThrowIfCancellationRequested();
                output.Write(piece);
                output.Flush();
            }
            void Opened(IInferenceBackend b)
            {
                if (b.Kind == InferenceBackendKind.Torch && options.Quantization is null) return;
                Console.Error.WriteLine($"[{b.Description}]");
                foreach (MergedAdapter m in b.MergedAdapters) Console.Error.WriteLine($"[adapter '{m.Name}' merged into the base: {m.Reason}]");
            }
            TextGenerationResult result = TextGenerator.Run(options, parse.GetValue(prompt)!, settings, Print, Opened);
            output.WriteLine();
            int count = result.GeneratedIds.Count;
            Console.Error.WriteLine(FormattableString.Invariant(
                $"[{result.PromptIds.Count} prompt tokens, {count} generated in {result.Seconds:F2} s ({count / Math.Max(result.Seconds, 1e-9):F1} tokens/s), stop: {Reason(result.FinishReason)}]"));
            return 0;
        });
        return command;
    }

    private static string Reason(GenerationFinishReason reason) => reason switch
    {
        GenerationFinishReason.EndOfSequence => "eos",
        GenerationFinishReason.StopString => "stop string",
        _ => "max new tokens",
    };
}
