using PeftHost.Tokenizers;
using Xunit;

namespace PeftHost.Formats.Tests.Tokenizers;

/// <summary>GPT-2 style byte-level BPE; expected ids worked out by hand from the tiny vocab and merge ranks.</summary>
public sealed class ByteLevelBpeTests
{
    private static ITextTokenizer Load()
    {
        string dir = TokenizerTestFiles.NewDir();
        TokenizerTestFiles.Write(dir, "tokenizer.json", TokenizerTestFiles.Gpt2Tiny);
        TokenizerTestFiles.Write(dir, "tokenizer_config.json", """{ "bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>" }""");
        return TokenizerLoader.FromDirectory(dir);
    }

    [Fact]
    public void Words_merge_by_rank()
    {
        ITextTokenizer t = Load();
        // "hello" -> h e l l o -> he l l o -> he ll o -> he llo -> hello; " world" -> Ġw o r l d -> Ġw or l d -> Ġwor l d -> Ġwor ld -> Ġworld.
        Assert.Equal([11, 15, 17], t.Encode("hello world!"));
        // "hell": he ll has no merge, so two tokens.
        Assert.Equal([8, 9], t.Encode("hell"));
    }

    [Fact]
    public void Special_tokens_are_matched_before_the_model()
    {
        ITextTokenizer t = Load();
        Assert.Equal([11, 18, 11], t.Encode("hello<|endoftext|>hello"));
        Assert.Equal(18, t.BosTokenId);
        Assert.Equal([18], t.EosTokenIds);
        Assert.Equal("hello<|endoftext|>hello", t.Decode([11, 18, 11]));
        Assert.Equal("hellohello", t.Decode([11, 18, 11], skipSpecialTokens: true));
    }

    [Fact]
    public void ByteLevel_post_processor_adds_nothing()
    {
        ITextTokenizer t = Load();
        Assert.Equal(t.Encode("hello", addSpecialTokens: false), t.Encode("hello", addSpecialTokens: true));
    }

    [Fact]
    public void Decodes_byte_tokens_and_maps_tokens()
    {
        ITextTokenizer t = Load();
        Assert.Equal("hello world!", t.Decode([11, 15, 17]));
        Assert.Equal(15, t.TokenToId("Ġworld"));
        Assert.Equal("Ġworld", t.IdToToken(15));
        Assert.Null(t.TokenToId("nope"));
        Assert.Equal(19, t.VocabSize);
    }

    [Fact]
    public void Pair_merges_and_string_merges_give_the_same_ids()
    {
        string dir = TokenizerTestFiles.NewDir();
        string pairs = TokenizerTestFiles.Gpt2Tiny.Replace(
            "[ \"h e\", \"l l\", \"ll o\", \"he llo\", \"Ġ w\", \"o r\", \"Ġw or\", \"l d\", \"Ġwor ld\" ]",
            "[ [\"h\",\"e\"], [\"l\",\"l\"], [\"ll\",\"o\"], [\"he\",\"llo\"], [\"Ġ\",\"w\"], [\"o\",\"r\"], [\"Ġw\",\"or\"], [\"l\",\"d\"], [\"Ġwor\",\"ld\"] ]",
            StringComparison.Ordinal);
        Assert.NotEqual(TokenizerTestFiles.Gpt2Tiny, pairs);
        TokenizerTestFiles.Write(dir, "tokenizer.json", pairs);
        Assert.Equal([11, 15, 17], TokenizerLoader.FromDirectory(dir).Encode("hello world!"));
    }

    [Fact]
    public void Llama3_split_then_bytelevel_with_ignore_merges()
    {
        const string pattern = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
        string json = $$"""
            {
              "added_tokens": [ { "id": 5, "content": "<|begin_of_text|>", "special": true, "normalized": false } ],
              "pre_tokenizer": { "type": "Sequence", "pretokenizers": [
                { "type": "Split", "pattern": { "Regex": {{System.Text.Json.JsonSerializer.Serialize(pattern)}} }, "behavior": "Isolated", "invert": false },
                { "type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false } ] },
              "post_processor": { "type": "TemplateProcessing",
                "single": [ { "SpecialToken": { "id": "<|begin_of_text|>", "type_id": 0 } }, { "Sequence": { "id": "A", "type_id": 0 } } ],
                "pair": [ { "Sequence": { "id": "A", "type_id": 0 } }, { "Sequence": { "id": "B", "type_id": 1 } } ],
                "special_tokens": { "<|begin_of_text|>": { "id": "<|begin_of_text|>", "ids": [ 5 ], "tokens": [ "<|begin_of_text|>" ] } } },
              "decoder": { "type": "ByteLevel" },
              "model": { "type": "BPE", "ignore_merges": true,
                "vocab": { "a": 0, "b": 1, "c": 2, "Ġ": 3, "Ġabc": 4, "1": 6, "2": 7, "3": 8, "4": 9 }, "merges": [] }
            }
            """;
        string dir = TokenizerTestFiles.NewDir();
        TokenizerTestFiles.Write(dir, "tokenizer.json", json);
        ITextTokenizer t = TokenizerLoader.FromDirectory(dir);
        // " abc" is one pre-token "Ġabc", found whole in the vocabulary although no merge builds it;
        // "1234" splits into "123" and "4" (\p{N}{1,3}).
        Assert.Equal([5, 0, 4, 6, 7, 8, 9], t.Encode("a abc1234"));
        Assert.Equal("a abc1234", t.Decode(t.Encode("a abc1234"), skipSpecialTokens: true));
    }

    [Fact]
    public void Lstrip_added_token_absorbs_the_space_before_it()
    {
        string dir = TokenizerTestFiles.NewDir();
        string json = TokenizerTestFiles.Gpt2Tiny.Replace(
            "\"special\": true }",
            "\"special\": true },\n    { \"id\": 19, \"content\": \"<mask>\", \"lstrip\": true, \"normalized\": false, \"special\": true }",
            StringComparison.Ordinal);
        TokenizerTestFiles.Write(dir, "tokenizer.json", json);
        ITextTokenizer t = TokenizerLoader.FromDirectory(dir);
        Assert.Equal([11, 19, 15], t.Encode("hello <mask> world"));
    }
}
