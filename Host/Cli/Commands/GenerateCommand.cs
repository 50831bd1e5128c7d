using System.CommandLine;
using System.Diagnostics;
using PeftHost.Engine.Export;
using PeftHost.Engine.Inference;
using PeftHost.Tokenizers;
using PeftHost.Vulkan.Generation;

namespace PeftHost.Cli.Commands;

/// <summary>
/// `pefthost generate --model DIR [--adapter [NAME=]DIR]... (--prompt TEXT | --prompt-ids 1,2,3) --backend vulkan --quant q4_0`:
/// streams generated tokens. The generation runs behind <see cref="ITokenStreamGenerator"/>; this
/// command only parses options, builds the generator for the backend and prints.
/// </summary>
internal static class GenerateCommand
{
    public static Command Create(Option<string> pluginsOption)
    {
        var model = new Option<string>("--model") { Description = "Model folder (config.json + model.safetensors [+ tokenizer.json]).", Required = true };
        var adapter = new Option<string[]>("--adapter") { Description = "PEFT adapter folder, [NAME=]DIR; repeat for several (merged)." };
        var prompt = new Option<string?>("--prompt") { Description = "Prompt text (needs the folder's tokenizer)." };
        var promptIds = new Option<string?>("--prompt-ids") { Description = "Prompt token ids, comma-separated." };
        var maxNew = new Option<int>("--max-new-tokens") { Description = "Tokens to generate.", DefaultValueFactory = _ => 32 };
        var topK = new Option<int>("--top-k") { Description = "1 = greedy; else sample among the k most likely.", DefaultValueFactory = _ => 1 };
        var temperature = new Option<float>("--temperature") { Description = "Sampling temperature.", DefaultValueFactory = _ => 1f };
        var seed = new Option<int>("--seed") { Description = "Sampling seed.", DefaultValueFactory = _ => 0 };
        var backend = new Option<string>("--backend") { Description = "vulkan.", DefaultValueFactory = _ => "vulkan" };
        var quant = new Option<string>("--quant") { Description = "f32 | f16 | q8_0 | q4_0.", DefaultValueFactory = _ => "q4_0" };
        var command = new Command("generate", "Generate tokens after a prompt.") { model, adapter, prompt, promptIds, maxNew, topK, temperature, seed, backend, quant };
        command.SetAction(parse =>
        {
            string temp = Path.Combine(Path.GetTempPath(), $"pefthost-generate-{Guid.NewGuid():N}.gguf");
            try
            {
                if (parse.GetValue(backend) != "vulkan")
                    return CliErrors.Fail($"generate supports --backend vulkan (got '{parse.GetValue(backend)}').");
                string folder = parse.GetValue(model)!;
                ITextTokenizer? tokenizer = File.Exists(Path.Combine(folder, "tokenizer.json")) ? TokenizerLoader.FromDirectory(folder) : null;
                int[] ids = PromptIds(parse.GetValue(prompt), parse.GetValue(promptIds), tokenizer);
                LlamaGgufExporter.Export(folder, [.. (parse.GetValue(adapter) ?? []).Select(LogitsRunner.AdapterSpec.Parse)], parse.GetValue(pluginsOption)!,
                    GgufQuant.Parse(parse.GetValue(quant)!), temp);
                var sampling = new TokenSampling
                {
                    MaxNewTokens = parse.GetValue(maxNew), TopK = parse.GetValue(topK), Temperature = parse.GetValue(temperature), Seed = parse.GetValue(seed),
                    StopIds = tokenizer?.EosTokenIds.ToHashSet() ?? [],
                };
                using ITokenStreamGenerator generator = new VulkanLlamaGenerator(temp, contextSize: ids.Length + sampling.MaxNewTokens);
                var output = new List<int>();
                long start = Stopwatch.GetTimestamp();
                foreach (int id in generator.Generate(ids, sampling))
                {
                    output.Add(id);
                    Console.Write(tokenizer is null ? $"{id} " : tokenizer.Decode([id]));
                }
                double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
                Console.WriteLine();
                Console.Error.WriteLine($"{output.Count} tokens in {seconds:F2} s ({generator.Description})");
                return 0;
            }
            catch (Exception e) when (CliErrors.IsUserError(e) || e is TokenizerLoadException)
            {
                return CliErrors.Fail(e.Message);
            }
            finally
            {
                File.Delete(temp);
            }
        });
        return command;
    }

    private static int[] PromptIds(string? text, string? ids, ITextTokenizer? tokenizer)
    {
        if ((text is null) == (ids is null))
            throw new ArgumentException("give exactly one of --prompt TEXT and --prompt-ids 1,2,3.");
        if (ids is not null)
            return [.. ids.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(int.Parse)];
        return tokenizer is null
            ? throw new ArgumentException("--prompt needs tokenizer.json in the model folder; use --prompt-ids.")
            : [.. tokenizer.Encode(text!)];
    }
}
