using System.Text.Json.Nodes;
using PeftHost.Engine.Inference;
using PeftHost.Models;
using PeftHost.Models.Generation;
using PeftHost.Tests.Support;
using PeftHost.Tokenizers;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace PeftHost.Tests.Inference;

public sealed class TextGeneratorTests : IDisposable
{
    private const string Prompt = "Hello wörld";
    private readonly ScratchFolder _dir = new();

    public TextGeneratorTests() => ModelPresets.Write("llama", "tiny", _dir.Path, seed: 7);

    public void Dispose() => _dir.Dispose();

    private static TextGenerationSettings Greedy(int tokens) => new() { Generation = new GenerationOptions { MaxNewTokens = tokens } };

    [Fact]
    public void Greedy_text_is_deterministic_and_equals_the_token_generator_on_the_same_ids()
    {
        TextGenerationResult first = TextGenerator.Run(_dir.Path, [], PluginDirs.Installed, ScalarType.Float32, CPU, Prompt, Greedy(24));
        TextGenerationResult second = TextGenerator.Run(_dir.Path, [], PluginDirs.Installed, ScalarType.Float32, CPU, Prompt, Greedy(24));
        Assert.Equal(first.GeneratedIds, second.GeneratedIds);
        Assert.Equal(first.Text, second.Text);

        ITextTokenizer tokenizer = TokenizerLoader.FromDirectory(_dir.Path);
        long[] ids = [.. tokenizer.Encode(Prompt).Select(i => (long)i)];
        Assert.Equal(ids, first.PromptIds);
        (_, nn.Module module) = ModelFactory.Load(_dir.Path);
        using (module)
        {
            var options = new GenerationOptions { MaxNewTokens = 24, StopTokenIds = [.. tokenizer.EosTokenIds.Select(i => (long)i)] };
            IReadOnlyList<long> direct = [.. TokenGenerator.Generate((ICausalLM)module, ids, options)];
            Assert.Equal(direct, first.GeneratedIds);
            Assert.Equal(tokenizer.Decode(direct.Select(i => (int)i), skipSpecialTokens: true), first.Text);
        }
    }

    [Fact]
    public void Streamed_pieces_add_up_to_the_text_and_the_command_prints_it()
    {
        var pieces = new List<string>();
        TextGenerationResult result = TextGenerator.Run(_dir.Path, [], PluginDirs.Installed, ScalarType.Float32, CPU, Prompt, Greedy(16), pieces.Add);
        Assert.Equal(result.Text, string.Concat(pieces));
        Assert.Equal(GenerationFinishReason.MaxNewTokens, result.FinishReason);

        (int code, string stdout, string stderr) = Cli.Run("generate", "--model", _dir.Path, "--prompt", Prompt, "--max-new-tokens", "16", "--threads", "1");
        Assert.True(code == 0, stderr);
        Assert.Equal(result.Text + Environment.NewLine, stdout);
        Assert.Contains("16 generated", stderr);
    }

    [Fact]
    public void Multi_byte_characters_are_held_back_until_complete_and_stop_strings_are_not_printed()
    {
        ITextTokenizer tokenizer = TokenizerLoader.FromDirectory(_dir.Path);
        // The tiny tokenizer has no merges: one id per byte, so "日" arrives in three pieces.
        var decoder = new StreamingTextDecoder(tokenizer, ["END"]);
        var printed = new List<string>();
        foreach (int id in tokenizer.Encode("日本 ok EN", addSpecialTokens: false)) printed.Add(decoder.Add(id));
        Assert.Equal(["", "", "日", "", "", "本", " ", "o", "k", " ", "", ""], printed);
        Assert.DoesNotContain(printed, p => p.Contains('\uFFFD'));
        Assert.False(decoder.Stopped);
        Assert.Equal("", decoder.Add(tokenizer.Encode("D", addSpecialTokens: false)[0]));
        Assert.True(decoder.Stopped);
        Assert.Equal("日本 ok ", decoder.Text);

        var partial = new StreamingTextDecoder(tokenizer, ["END"]);
        foreach (int id in tokenizer.Encode("x EN", addSpecialTokens: false)) partial.Add(id);
        Assert.Equal("EN", partial.Flush());
        Assert.Equal("x EN", partial.Text);
    }

    [Fact]
    public void Generation_ends_at_eos_without_printing_it_and_at_stop_strings()
    {
        ITextTokenizer tokenizer = TokenizerLoader.FromDirectory(_dir.Path);
        long eos = tokenizer.EosTokenIds[0];
        long[] text = [.. tokenizer.Encode("abc STOP def", addSpecialTokens: false).Select(i => (long)i)];
        IEnumerable<long> Stream(IReadOnlyList<long> prompt, GenerationOptions options)
        {
            Assert.Contains(eos, options.StopTokenIds);
            foreach (long id in text) yield return id;
            yield return eos;
            throw new InvalidOperationException("read past the end of sequence");
        }

        TextGenerationResult toEos = TextGenerator.Generate(tokenizer, [1L], Stream, Greedy(100));
        Assert.Equal(GenerationFinishReason.EndOfSequence, toEos.FinishReason);
        Assert.Equal("abc STOP def", toEos.Text);
        Assert.Equal(eos, toEos.GeneratedIds[^1]);

        TextGenerationResult toStop = TextGenerator.Generate(tokenizer, [1L], Stream, Greedy(100) with { StopStrings = ["STOP", "c S"] });
        Assert.Equal(GenerationFinishReason.StopString, toStop.FinishReason);
        Assert.Equal("ab", toStop.Text);
    }

    [Fact]
    public void Chat_applies_the_tokenizer_template_and_a_missing_template_is_a_clear_error()
    {
        ITextTokenizer plain = TokenizerLoader.FromDirectory(_dir.Path);
        var missing = Assert.Throws<ArgumentException>(() => TextGenerator.PromptIds(plain, "hi", chat: true, systemPrompt: null));
        Assert.Contains("no chat template", missing.Message);
        Assert.Contains("--chat", Assert.Throws<ArgumentException>(() => TextGenerator.PromptIds(plain, "hi", chat: false, systemPrompt: "be brief")).Message);

        string config = Path.Combine(_dir.Path, "tokenizer_config.json");
        JsonObject json = JsonNode.Parse(File.ReadAllText(config))!.AsObject();
        json["chat_template"] = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
        File.WriteAllText(config, json.ToJsonString());
        ITextTokenizer chat = TokenizerLoader.FromDirectory(_dir.Path);
        IReadOnlyList<long> ids = TextGenerator.PromptIds(chat, "hi", chat: true, systemPrompt: "be brief");
        Assert.Equal("<|im_start|>system\nbe brief<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n", chat.Decode(ids.Select(i => (int)i)));

        (int code, string stdout, string stderr) = Cli.Run("generate", "--model", _dir.Path, "--prompt", "hi", "--chat", "--system", "be brief", "--max-new-tokens", "4");
        Assert.True(code == 0, stderr);
        Assert.Contains($"[{ids.Count} prompt tokens", stderr);
        Assert.NotEmpty(stdout);
    }

    [Fact]
    public void Greedy_text_is_the_same_on_the_vulkan_backend_in_f32()
    {
        (int torchCode, string torchOut, string torchErr) = Cli.Run("generate", "--model", _dir.Path, "--prompt", "hello world", "--max-new-tokens", "6");
        Assert.True(torchCode == 0, torchErr);
        (int vkCode, string vkOut, string vkErr) = Cli.Run("generate", "--model", _dir.Path, "--prompt", "hello world", "--max-new-tokens", "6", "--backend", "vulkan", "--quant", "f32");
        Assert.True(vkCode == 0, vkErr);
        Assert.Equal(torchOut, vkOut);
        Assert.Contains("6 generated", vkErr);
    }

    [Fact]
    public void Greedy_text_is_the_same_on_the_llama_backend_in_f32_and_the_base_is_cached()
    {
        (int torchCode, string torchOut, string torchErr) = Cli.Run("generate", "--model", _dir.Path, "--prompt", "hello world", "--max-new-tokens", "6");
        Assert.True(torchCode == 0, torchErr);
        string cache = Path.Combine(_dir.Path, "gguf-cache");
        (int code, string stdout, string stderr) = Cli.Run("generate", "--model", _dir.Path, "--prompt", "hello world", "--max-new-tokens", "6", "--backend", "llama",
            "--quant", "f32", "--cache", cache);
        Assert.True(code == 0, stderr);
        Assert.Equal(torchOut, stdout);
        Assert.Contains("llama.cpp (cpu", stderr);
        Assert.Contains("6 generated", stderr);
        string file = Assert.Single(Directory.GetFiles(cache));
        DateTime written = File.GetLastWriteTimeUtc(file);
        (code, _, stderr) = Cli.Run("generate", "--model", _dir.Path, "--prompt", "hello", "--max-new-tokens", "2", "--backend", "llama", "--quant", "f32", "--cache", cache);
        Assert.True(code == 0, stderr);
        Assert.Equal(written, File.GetLastWriteTimeUtc(Assert.Single(Directory.GetFiles(cache))));
    }

    [Fact]
    public void Command_errors_name_the_problem()
    {
        (int code, _, string stderr) = Cli.Run("generate", "--model", _dir.Path, "--prompt", "hi", "--chat");
        Assert.Equal(2, code);
        Assert.Contains("no chat template", stderr);

        (code, _, stderr) = Cli.Run("generate", "--model", Conformance.Case("base_llama"), "--prompt", "hi");
        Assert.Equal(2, code);
        Assert.Contains("tokenizer.json", stderr);

        (code, _, stderr) = Cli.Run("generate", "--model", _dir.Path, "--prompt", "hi", "--backend", "vulkan", "--temperature", "0.7", "--top-p", "0.9");
        Assert.Equal(2, code);
        Assert.Contains("--top-p and --repetition-penalty need --backend torch", stderr);

        (code, _, stderr) = Cli.Run("generate", "--model", _dir.Path, "--prompt", "hi", "--top-p", "0");
        Assert.Equal(2, code);
        Assert.Contains("--top-p", stderr);
    }

    [Fact]
    public void Sampling_with_a_seed_repeats_and_adapters_change_the_output()
    {
        TextGenerationSettings sampled = Greedy(12) with { Generation = new GenerationOptions { MaxNewTokens = 12, DoSample = true, Temperature = 0.9, TopK = 50, TopP = 0.95, Seed = 5 } };
        TextGenerationResult a = TextGenerator.Run(_dir.Path, [], PluginDirs.Installed, ScalarType.Float32, CPU, Prompt, sampled);
        TextGenerationResult b = TextGenerator.Run(_dir.Path, [], PluginDirs.Installed, ScalarType.Float32, CPU, Prompt, sampled);
        Assert.Equal(a.GeneratedIds, b.GeneratedIds);

        // The conformance LoRA (q, v; hidden 64) fits the tiny llama: generation runs through the adapter layers, deterministically.
        var adapter = AdapterSpec.FromFolder(Path.Combine(Conformance.Case("lora_qv"), "adapter"), 0);
        TextGenerationResult withAdapter = TextGenerator.Run(_dir.Path, [adapter], PluginDirs.Installed, ScalarType.Float32, CPU, Prompt, Greedy(12));
        Assert.Equal(withAdapter.GeneratedIds, TextGenerator.Run(_dir.Path, [adapter], PluginDirs.Installed, ScalarType.Float32, CPU, Prompt, Greedy(12)).GeneratedIds);
    }
}
