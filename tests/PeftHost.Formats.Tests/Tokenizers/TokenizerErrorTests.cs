using PeftHost.Tokenizers;
using Xunit;

namespace PeftHost.Formats.Tests.Tokenizers;

/// <summary>Errors name the file and the field at fault.</summary>
public sealed class TokenizerErrorTests
{
    private static TokenizerLoadException LoadError(string tokenizerJson)
    {
        string dir = TokenizerTestFiles.NewDir();
        TokenizerTestFiles.Write(dir, "tokenizer.json", tokenizerJson);
        return Assert.Throws<TokenizerLoadException>(() => TokenizerLoader.FromDirectory(dir));
    }

    [Fact]
    public void Missing_files_are_named()
    {
        string dir = TokenizerTestFiles.NewDir();
        TokenizerLoadException e = Assert.Throws<TokenizerLoadException>(() => TokenizerLoader.FromDirectory(dir));
        Assert.Contains("tokenizer.json", e.Message, StringComparison.Ordinal);
        Assert.Contains("vocab.txt", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Missing_vocab_names_the_field()
    {
        TokenizerLoadException e = LoadError("""{ "model": { "type": "BPE", "merges": [] } }""");
        Assert.Equal("model.vocab", e.Field);
        Assert.EndsWith("tokenizer.json", e.FilePath, StringComparison.Ordinal);
        Assert.Contains("model.vocab", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Unsupported_model_type_is_refused()
    {
        TokenizerLoadException e = LoadError("""{ "model": { "type": "Unigram", "vocab": [] } }""");
        Assert.Equal("model.type", e.Field);
        Assert.Contains("Unigram", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Unsupported_normalizer_names_its_path()
    {
        TokenizerLoadException e = LoadError("""{ "normalizer": { "type": "Sequence", "normalizers": [ { "type": "Precompiled" } ] }, "model": { "vocab": { "a": 0 }, "merges": [] } }""");
        Assert.Equal("normalizer.normalizers[0].type", e.Field);
        Assert.Contains("Precompiled", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Malformed_merge_names_its_index()
    {
        TokenizerLoadException e = LoadError("""{ "model": { "vocab": { "a": 0, "b": 1, "ab": 2 }, "merges": [ "a b", "ab" ] } }""");
        Assert.Equal("model.merges[1]", e.Field);
    }

    [Fact]
    public void Merge_of_unknown_token_is_reported()
    {
        TokenizerLoadException e = LoadError("""{ "model": { "vocab": { "a": 0, "b": 1 }, "merges": [ "a b" ] } }""");
        Assert.Equal("model.merges", e.Field);
        Assert.Contains("ab", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Invalid_json_names_the_file()
    {
        TokenizerLoadException e = LoadError("{ not json");
        Assert.Null(e.Field);
        Assert.Contains("not valid JSON", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Special_token_missing_from_vocabulary_is_reported()
    {
        string dir = TokenizerTestFiles.NewDir();
        TokenizerTestFiles.Write(dir, "tokenizer.json", TokenizerTestFiles.Gpt2Tiny);
        TokenizerTestFiles.Write(dir, "tokenizer_config.json", """{ "bos_token": "<s>" }""");
        TokenizerLoadException e = Assert.Throws<TokenizerLoadException>(() => TokenizerLoader.FromDirectory(dir));
        Assert.Contains("bos_token '<s>'", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Word_piece_vocab_without_special_tokens_is_refused()
    {
        string dir = TokenizerTestFiles.NewDir();
        TokenizerTestFiles.Write(dir, "vocab.txt", "a\nb\n");
        TokenizerLoadException e = Assert.Throws<TokenizerLoadException>(() => TokenizerLoader.FromDirectory(dir));
        Assert.Contains("[UNK]", e.Message, StringComparison.Ordinal);
    }
}
