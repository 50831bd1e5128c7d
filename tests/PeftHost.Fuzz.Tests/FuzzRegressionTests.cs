using System.Buffers.Binary;
using System.Text;
using PeftHost.Formats.Gguf;
using PeftHost.Formats.Safetensors;
using PeftHost.Models.Config;
using PeftHost.Tokenizers;
using Xunit;

namespace PeftHost.Fuzz.Tests;

/// <summary>
/// What the fuzzer (AFL++ and the mutation tests) found: every crashing input it saved replays cleanly now
/// (tests/PeftHost.Fuzz/Regressions/TARGET), and each defect has a test of the error the user now gets.
/// </summary>
public sealed class FuzzRegressionTests
{
    public static TheoryData<string, string> SavedInputs()
    {
        var data = new TheoryData<string, string>();
        string root = Path.Combine(AppContext.BaseDirectory, "Regressions");
        foreach (string dir in Directory.GetDirectories(root).Order(StringComparer.Ordinal))
            foreach (string file in Directory.GetFiles(dir).Order(StringComparer.Ordinal))
                data.Add(Path.GetFileName(dir), Path.GetFileName(file));
        return data;
    }

    [Theory]
    [MemberData(nameof(SavedInputs))]
    public void A_saved_crashing_input_now_ends_cleanly(string target, string file)
    {
        byte[] input = File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "Regressions", target, file));
        FuzzOutcome outcome = FuzzTargets.Get(target).Execute(input);
        Assert.True(Enum.IsDefined(outcome));
    }

    [Fact]
    public void A_safetensors_header_that_is_not_utf8_is_refused_naming_the_file()
    {
        using var dir = new ScratchDir();
        byte[] file = SeedFiles.Safetensors(("a", [2]));
        int quote = Encoding.ASCII.GetString(file).IndexOf("\"a\"", StringComparison.Ordinal);
        file[quote + 1] = 0xFF;
        string path = dir.Write("bad.safetensors", file);
        var e = Assert.Throws<InvalidDataException>(() => SafetensorsFile.Open(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("UTF-8", e.Message);
    }

    [Fact]
    public void A_gguf_tensor_whose_byte_count_overflows_is_refused()
    {
        byte[] file = SeedFiles.Gguf();
        // The first tensor's first dimension, found by the spec walker: 2^62 f32 values wrap 64 bits of bytes.
        (int offset, _) = GgufFields.Of(file).First(f => f.Width == 8 && BinaryPrimitives.ReadUInt64LittleEndian(file.AsSpan(f.Offset)) == 4 && f.Offset > 100);
        BinaryPrimitives.WriteUInt64LittleEndian(file.AsSpan(offset), 1UL << 62);
        var e = Assert.Throws<GgufFormatException>(() => GgufFile.Read(new MemoryStream(file), "x.gguf"));
        Assert.Equal("f32", e.TensorName);
        Assert.Contains("2^64 bytes", e.Message);
    }

    [Fact]
    public void Gguf_arrays_nested_too_deep_are_refused_instead_of_overflowing_the_stack()
    {
        using var buffer = new MemoryStream();
        using var w = new BinaryWriter(buffer);
        w.Write(GgufConstants.Magic); w.Write(3u); w.Write(0UL); w.Write(1UL);
        w.Write(4UL); w.Write("deep"u8);
        w.Write(9u);
        for (int i = 0; i < 100_000; i++) { w.Write(9u); w.Write(1UL); }
        w.Write(4u); w.Write(0UL);
        var e = Assert.Throws<GgufFormatException>(() => GgufFile.Read(new MemoryStream(buffer.ToArray()), "deep.gguf"));
        Assert.Contains("'deep' nests arrays", e.Message);
    }

    [Fact]
    public void A_tokenizer_vocab_giving_two_tokens_one_id_is_refused_naming_both()
    {
        using var dir = new ScratchDir();
        dir.Write("tokenizer.json", Encoding.UTF8.GetBytes("""{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 1}, "merges": ["a b"]}}"""));
        var e = Assert.Throws<TokenizerLoadException>(() => TokenizerLoader.FromDirectory(dir.Path));
        Assert.Equal("model.vocab", e.Field);
        Assert.Contains("'b' and 'ab' both have id 1", e.Message);
    }

    [Fact]
    public void A_post_processor_id_that_is_no_token_is_refused()
    {
        using var dir = new ScratchDir();
        dir.Write("tokenizer.json", Encoding.UTF8.GetBytes("""
            {"post_processor": {"type": "BertProcessing", "cls": ["[CLS]", 0], "sep": ["[SEP]", 99]},
             "model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": []}}
            """));
        var e = Assert.Throws<TokenizerLoadException>(() => TokenizerLoader.FromDirectory(dir.Path));
        Assert.Equal("post_processor", e.Field);
        Assert.Contains("99", e.Message);
    }

    [Fact]
    public void A_post_processor_id_of_the_wrong_json_kind_is_refused_naming_the_field()
    {
        using var dir = new ScratchDir();
        dir.Write("tokenizer.json", Encoding.UTF8.GetBytes("""
            {"post_processor": {"type": "BertProcessing", "cls": ["[CLS]", [0]], "sep": ["[SEP]", 1]},
             "model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": []}}
            """));
        var e = Assert.Throws<TokenizerLoadException>(() => TokenizerLoader.FromDirectory(dir.Path));
        Assert.Equal("post_processor.cls[1]", e.Field);
    }

    [Fact]
    public void A_replace_of_empty_text_is_refused_at_load_rather_than_failing_every_encode()
    {
        using var dir = new ScratchDir();
        dir.Write("tokenizer.json", Encoding.UTF8.GetBytes("""
            {"normalizer": {"type": "Replace", "pattern": {"String": ""}, "content": "x"},
             "model": {"type": "BPE", "vocab": {"a": 0, "x": 1}, "merges": []}}
            """));
        var e = Assert.Throws<TokenizerLoadException>(() => TokenizerLoader.FromDirectory(dir.Path));
        Assert.Equal("normalizer.pattern.String", e.Field);
    }

    [Fact]
    public void A_vocab_txt_repeating_a_token_is_refused_naming_both_lines()
    {
        using var dir = new ScratchDir();
        dir.Write("vocab.txt", Encoding.UTF8.GetBytes("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nx\n[CLS]\n"));
        var e = Assert.Throws<TokenizerLoadException>(() => TokenizerLoader.FromDirectory(dir.Path));
        Assert.Contains("line 7 repeats the token '[CLS]' of line 3", e.Message);
    }

    [Theory]
    [InlineData("""{"model_type": "llama", "hidden_size": 64, "num_attention_heads": 4, "head_dim": 16, "head_dim": 8}""", "not valid JSON")]
    [InlineData("""{"model_type": "llama", "architectures": [7]}""", "field 'architectures' is [7]")]
    [InlineData("""{"model_type": "llama", "hidden_size": 64, "num_attention_heads": 0}""", "field 'num_attention_heads' is 0")]
    [InlineData("""{"model_type": "gpt2", "n_embd": 64, "n_layer": 1, "n_head": 4, "vocab_size": 10, "layer_norm_epsilon": 1e309}""", "field 'layer_norm_epsilon' has value 1e309")]
    [InlineData("""{"model_type": "gpt2", "n_embd": 66, "n_layer": 1, "n_head": 4, "vocab_size": 10}""", "field 'n_head' (4) does not divide 'n_embd' (66)")]
    [InlineData("""{"model_type": "bert", "hidden_size": 64, "num_hidden_layers": 1, "num_attention_heads": 4, "intermediate_size": 8, "vocab_size": 10, "pad_token_id": 10}""", "field 'pad_token_id' is 10; expected an id in [0, 10)")]
    [InlineData("""{"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 1, "num_attention_heads": 4, "intermediate_size": 8, "vocab_size": 10, "rms_norm_eps": -1}""", "field 'rms_norm_eps' is -1; expected a positive number")]
    [InlineData("""{"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 1, "num_attention_heads": 4, "num_key_value_heads": 3, "intermediate_size": 8, "vocab_size": 10}""", "field 'num_key_value_heads' (3) does not divide 'num_attention_heads' (4)")]
    [InlineData("""{"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 1, "num_attention_heads": 4, "intermediate_size": 8, "vocab_size": 10, "torch_dtype": 16}""", "field 'torch_dtype' is 16")]
    public void A_config_json_out_of_range_is_refused_naming_the_field(string json, string expected)
    {
        using var dir = new ScratchDir();
        string path = dir.Write("config.json", Encoding.UTF8.GetBytes(json));
        var e = Assert.Throws<InvalidDataException>(() => ModelConfigReader.Read(path));
        Assert.Contains(path, e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void An_adapter_config_number_too_large_for_a_double_is_refused_naming_the_field()
    {
        var json = (System.Text.Json.Nodes.JsonObject)System.Text.Json.Nodes.JsonNode.Parse("""{"peft_type": "LORA", "r": 8, "lora_alpha": 1e309}""")!;
        var e = Assert.Throws<PeftHost.Abstractions.Config.TunerConfigException>(() => new PeftHost.Plugins.Lora.LoraTuner().ParseConfig(json));
        Assert.Contains("'lora_alpha'", e.Message);
    }

    private sealed class ScratchDir : IDisposable
    {
        public string Path { get; } = Directory.CreateTempSubdirectory("pefthost-fuzz-regression-").FullName;

        public string Write(string name, byte[] bytes)
        {
            string file = System.IO.Path.Combine(Path, name);
            File.WriteAllBytes(file, bytes);
            return file;
        }

        public void Dispose() => Directory.Delete(Path, recursive: true);
    }
}
