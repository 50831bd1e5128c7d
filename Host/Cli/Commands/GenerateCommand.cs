using System.CommandLine;
using PeftHost.Engine.Export;
using PeftHost.Engine.Inference;
using PeftHost.Engine.Plugins;
using PeftHost.Engine.Runtime;
using PeftHost.Models.Checkpoint;
using PeftHost.Models.Generation;
using PeftHost.Tokenizers;
using PeftHost.Vulkan.Generation;
using TorchSharp;

namespace PeftHost.Cli.Commands;

/// <summary>
/// `pefthost generate --model DIR [--adapter [NAME=]DIR]... --prompt TEXT [sampling options]
/// [--backend torch|vulkan --quant ...]`: streams the generated text to stdout as it comes; a summary
/// line goes to stderr. Both backends feed <see cref="TextGenerator"/> (tokenizer, chat template,
/// incremental decoding, stop strings); the Vulkan one samples on the device.
/// </summary>
internal static class GenerateCommand
{
    public static Command Create(Option<string> pluginsOption)
    {
        var model = new Option<string>("--model") { Description = "Model folder (config.json, weights, tokenizer.json or vocab.txt).", Required = true };
        var adapter = new Option<string[]>("--adapter") { Description = "PEFT adapter folder, [NAME=]DIR; repeat for several (all active).", AllowMultipleArgumentsPerToken = false };
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
        var backend = new Option<string>("--backend") { Description = "torch | vulkan.", DefaultValueFactory = _ => "torch" };
        var device = new Option<string>("--device") { Description = "cpu | cuda | cuda:N.", DefaultValueFactory = _ => "cpu" };
        var dtype = new Option<string>("--dtype") { Description = "f32 | f16 | bf16.", DefaultValueFactory = _ => "f32" };
        var threads = new Option<int?>("--threads") { Description = "Intra-op CPU threads (default: libtorch's choice)." };
        var quant = new Option<string>("--quant") { Description = "With --backend vulkan: f32 | f16 | q8_0 | q4_0.", DefaultValueFactory = _ => "q4_0" };
        var command = new Command("generate", "Generate text from a prompt, streamed as it comes.")
        {
            model, adapter, prompt, chat, system, maxNew, temperature, topK, topP, repetition, seed, stop, backend, device, dtype, threads, quant,
        };
        command.SetAction(parse =>
        {
            try
            {
                string be = parse.GetValue(backend)!;
                if (be is not ("torch" or "vulkan")) return Fail($"unknown backend '{be}': use torch or vulkan.");
                if (parse.GetValue(maxNew) < 1) return Fail("--max-new-tokens must be at least 1.");
                double t = parse.GetValue(temperature);
                if (t < 0) return Fail("--temperature must be 0 (greedy) or positive.");
                if (parse.GetValue(topK) < 0) return Fail("--top-k must be 0 (off) or positive.");
                double p = parse.GetValue(topP);
                if (p <= 0 || p > 1) return Fail("--top-p must be in (0, 1].");
                if (parse.GetValue(repetition) <= 0) return Fail("--repetition-penalty must be positive.");
                if (parse.GetValue(threads) is int n)
                {
                    if (n < 1) return Fail("--threads must be at least 1.");
                    torch.set_num_threads(n);
                }
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
                string[] adapters = parse.GetValue(adapter) ?? [];
                // Generated text is UTF-8 whatever the locale says (a C locale would print ? for every non-ASCII character).
                Console.OutputEncoding = new System.Text.UTF8Encoding(false);
                TextWriter output = Console.Out;
                void Print(string piece)
                {
                    output.Write(piece);
                    output.Flush();
                }
                var specs = adapters.Select(LogitsRunner.AdapterSpec.Parse).ToList();
                TextGenerationResult result = be == "vulkan"
                    ? OnVulkan(parse.GetValue(model)!, specs, parse.GetValue(pluginsOption)!, GgufQuant.Parse(parse.GetValue(quant)!), parse.GetValue(prompt)!, settings, Print)
                    : TextGenerator.Run(parse.GetValue(model)!, specs, parse.GetValue(pluginsOption)!,
                        TensorBridge.ParseDType(parse.GetValue(dtype)!), TorchDevice.Parse(parse.GetValue(device)!), parse.GetValue(prompt)!, settings, Print);
                output.WriteLine();
                int count = result.GeneratedIds.Count;
                Console.Error.WriteLine(FormattableString.Invariant(
                    $"[{result.PromptIds.Count} prompt tokens, {count} generated in {result.Seconds:F2} s ({count / Math.Max(result.Seconds, 1e-9):F1} tokens/s), stop: {Reason(result.FinishReason)}]"));
                return 0;
            }
            catch (Exception e) when (e is ArgumentException or InvalidDataException or FileNotFoundException or DirectoryNotFoundException or NotSupportedException
                                           or KeyNotFoundException or PluginFaultException or PeftHost.Abstractions.Config.TunerConfigException
                                           or TokenizerLoadException or ChatTemplateException)
            {
                Console.Out.Flush();
                return Fail(e.Message);
            }
        });
        return command;
    }

    // The Vulkan backend: merge and quantize to a temporary GGUF, then let the device generator feed the shared text pipeline.
    private static TextGenerationResult OnVulkan(string folder, IReadOnlyList<LogitsRunner.AdapterSpec> adapters, string plugins, PeftHost.Formats.Gguf.GgmlType quant,
        string prompt, TextGenerationSettings settings, Action<string> print)
    {
        GenerationOptions o = settings.Generation;
        if (o.TopP < 1 || o.RepetitionPenalty != 1)
            throw new NotSupportedException("the vulkan backend samples greedily or with top-k and temperature; --top-p and --repetition-penalty need --backend torch.");
        ITextTokenizer tokenizer = TokenizerLoader.FromDirectory(folder);
        IReadOnlyList<long> promptIds = TextGenerator.PromptIds(tokenizer, prompt, settings.Chat, settings.SystemPrompt);
        string gguf = Path.Combine(Path.GetTempPath(), $"pefthost-generate-{Guid.NewGuid():N}.gguf");
        try
        {
            LlamaGgufExporter.Export(folder, adapters, plugins, quant, gguf);
            using var generator = new VulkanLlamaGenerator(gguf, contextSize: promptIds.Count + o.MaxNewTokens);
            var sampling = new TokenSampling
            {
                MaxNewTokens = o.MaxNewTokens,
                TopK = o.DoSample ? (o.TopK > 0 ? o.TopK : tokenizer.VocabSize) : 1,
                Temperature = (float)o.Temperature,
                Seed = (int)(o.Seed ?? Environment.TickCount),
                StopIds = tokenizer.EosTokenIds.ToHashSet(),
            };
            IEnumerable<long> Stream(IReadOnlyList<long> ids, GenerationOptions _) =>
                generator.Generate([.. ids.Select(i => (int)i)], sampling).Select(i => (long)i);
            return TextGenerator.Generate(tokenizer, promptIds, Stream, settings, print);
        }
        finally
        {
            File.Delete(gguf);
        }
    }

    private static string Reason(GenerationFinishReason reason) => reason switch
    {
        GenerationFinishReason.EndOfSequence => "eos",
        GenerationFinishReason.StopString => "stop string",
        _ => "max new tokens",
    };

    private static int Fail(string message)
    {
        Console.Error.WriteLine("error: " + message);
        return 1;
    }
}
