using System.Text.Json.Nodes;
using PeftHost.Models;
using PeftHost.Models.Config;
using PeftHost.Tests.Support;
using PeftHost.Tokenizers;
using Xunit;

namespace PeftHost.Tests.CommandLine;

public class MakeModelTokenizerTests
{
    [Theory]
    [InlineData("llama", "<s>", "</s>")]
    [InlineData("gpt2", "<|endoftext|>", "<|endoftext|>")]
    public void Byte_level_presets_write_a_tokenizer_whose_special_ids_match_config_json(string arch, string bos, string eos)
    {
        using var dir = new ScratchFolder();
        ModelPresets.Write(arch, "tiny", dir.Path, seed: 0);
        JsonNode config = JsonNode.Parse(File.ReadAllText(Path.Combine(dir.Path, "config.json")))!;
        JsonNode generation = JsonNode.Parse(File.ReadAllText(Path.Combine(dir.Path, "generation_config.json")))!;
        ITextTokenizer tokenizer = TokenizerLoader.FromDirectory(dir.Path);

        Assert.Equal(config["vocab_size"]!.GetValue<int>(), tokenizer.VocabSize);
        Assert.Equal(config["bos_token_id"]!.GetValue<int>(), tokenizer.TokenToId(bos));
        Assert.Equal(config["eos_token_id"]!.GetValue<int>(), tokenizer.TokenToId(eos));
        Assert.Equal(config["bos_token_id"]!.GetValue<int>(), tokenizer.BosTokenId);
        Assert.Contains(config["eos_token_id"]!.GetValue<int>(), tokenizer.EosTokenIds);
        Assert.Equal(config["eos_token_id"]!.GetValue<int>(), generation["eos_token_id"]!.GetValue<int>());
    }

    [Theory]
    [InlineData("llama")]
    [InlineData("gpt2")]
    public void Byte_level_presets_round_trip_any_text_including_multi_byte_characters(string arch)
    {
        using var dir = new ScratchFolder();
        ModelPresets.Write(arch, "tiny", dir.Path, seed: 0);
        ITextTokenizer tokenizer = TokenizerLoader.FromDirectory(dir.Path);
        const string text = "Hello, wörld! Ünïcode: 日本語 and emoji 🙂\n\ttabs  spaces";
        IReadOnlyList<int> ids = tokenizer.Encode(text, addSpecialTokens: false);
        Assert.All(ids, id => Assert.InRange(id, 0, 255));
        Assert.Equal(text, tokenizer.Decode(ids));
    }

    [Fact]
    public void Larger_presets_learn_merges_and_keep_every_id_inside_the_model_vocabulary()
    {
        using var dir = new ScratchFolder();
        ModelConfig config = ModelConfigReader.Parse(ModelPresets.Config("llama", "small"), "preset llama/small");
        ModelPresets.WriteTokenizerFiles(config, dir.Path);
        ITextTokenizer tokenizer = TokenizerLoader.FromDirectory(dir.Path);
        const string text = "The model is trained on the text of the tokenizer.";
        IReadOnlyList<int> ids = tokenizer.Encode(text, addSpecialTokens: false);

        Assert.True(ids.Count < System.Text.Encoding.UTF8.GetByteCount(text), "merges shorten the encoding");
        Assert.InRange(tokenizer.VocabSize, 257, config.VocabSize);
        Assert.Equal(tokenizer.VocabSize - 1, config.Raw["eos_token_id"]!.GetValue<int>());
        Assert.Equal(text, tokenizer.Decode(ids));
    }

    [Fact]
    public void Bert_preset_writes_a_word_piece_vocab_that_round_trips_lower_case_words()
    {
        using var dir = new ScratchFolder();
        ModelPresets.Write("bert", "tiny", dir.Path, seed: 0);
        Assert.True(File.Exists(Path.Combine(dir.Path, "vocab.txt")));
        ITextTokenizer tokenizer = TokenizerLoader.FromDirectory(dir.Path);
        IReadOnlyList<int> ids = tokenizer.Encode("The quick brown fox", addSpecialTokens: true);

        Assert.Equal(tokenizer.TokenToId("[CLS]"), ids[0]);
        Assert.Equal(tokenizer.TokenToId("[SEP]"), ids[^1]);
        Assert.Equal(0, tokenizer.TokenToId("[PAD]"));
        Assert.All(ids, id => Assert.InRange(id, 0, 255));
        Assert.Equal("the quick brown fox", tokenizer.Decode(ids, skipSpecialTokens: true));
    }

    [Fact]
    public void Make_model_command_writes_the_tokenizer_files()
    {
        using var dir = new ScratchFolder();
        string folder = Path.Combine(dir.Path, "m");
        (int code, _, string stderr) = Cli.Run("make-model", "--arch", "llama", "--size", "tiny", "--out", folder);
        Assert.True(code == 0, stderr);
        foreach (string file in new[] { "config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "generation_config.json" })
            Assert.True(File.Exists(Path.Combine(folder, file)), file);
        Assert.Equal("hi there", TokenizerLoader.FromDirectory(folder).Decode(TokenizerLoader.FromDirectory(folder).Encode("hi there")));
    }
}
