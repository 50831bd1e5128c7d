using System.Text.Json;
using PeftHost.Tokenizers;
using Xunit;

namespace PeftHost.Formats.Tests.Tokenizers;

/// <summary>The local writers: files in the standard layout, deterministic, loadable, lossless on round trips.</summary>
public sealed class TokenizerFilesTests
{
    [Fact]
    public void Byte_level_bpe_round_trips_any_text()
    {
        string dir = TokenizerTestFiles.NewDir();
        Assert.Equal(400, TokenizerFiles.WriteByteLevelBpe(dir, 400));
        ITextTokenizer t = TokenizerLoader.FromDirectory(dir);
        Assert.Equal(400, t.VocabSize);
        Assert.Equal(399, t.TokenToId(SpecialTokens.EndOfText));
        Assert.Equal([399], t.EosTokenIds);
        foreach (string s in new[] { "The model reads the tokens.", "  two  spaces\n\nnewlines\r\n", "héllo wörld", "日本語のテキスト", "emoji 😀👍🏽 ok", "tab\tend ", "" })
        {
            Assert.Equal(s, t.Decode(t.Encode(s)));
        }
    }

    [Fact]
    public void Byte_level_bpe_learns_merges_that_shorten_common_words()
    {
        string dir = TokenizerTestFiles.NewDir();
        TokenizerFiles.WriteByteLevelBpe(dir, 600);
        ITextTokenizer t = TokenizerLoader.FromDirectory(dir);
        // " the" is the most frequent word of the built-in text, so it must be one token.
        Assert.Single(t.Encode(" the"));
        Assert.True(t.Encode("The model reads the tokens").Count < "The model reads the tokens".Length / 2);
        Assert.Equal([t.TokenToId(SpecialTokens.EndOfText)!.Value], t.Encode(SpecialTokens.EndOfText));
    }

    [Fact]
    public void Byte_level_bpe_is_deterministic_and_standard()
    {
        string a = TokenizerTestFiles.NewDir();
        string b = TokenizerTestFiles.NewDir();
        TokenizerFiles.WriteByteLevelBpe(a, 350, ["<s>", "</s>"]);
        TokenizerFiles.WriteByteLevelBpe(b, 350, ["<s>", "</s>"]);
        Assert.Equal(File.ReadAllBytes(Path.Combine(a, "tokenizer.json")), File.ReadAllBytes(Path.Combine(b, "tokenizer.json")));
        using JsonDocument doc = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(a, "tokenizer.json")));
        JsonElement model = doc.RootElement.GetProperty("model");
        Assert.Equal("BPE", model.GetProperty("type").GetString());
        Assert.Equal(348, model.GetProperty("vocab").EnumerateObject().Count());
        Assert.Equal(348 - 256, model.GetProperty("merges").GetArrayLength());
        Assert.Equal("ByteLevel", doc.RootElement.GetProperty("pre_tokenizer").GetProperty("type").GetString());
        ITextTokenizer t = TokenizerLoader.FromDirectory(a);
        Assert.Equal(348, t.BosTokenId);
        Assert.Equal([349], t.EosTokenIds);
    }

    [Fact]
    public void Byte_level_bpe_rejects_a_size_below_the_byte_alphabet()
    {
        // 243 bytes can occur in UTF-8 text (256 less 0xC0, 0xC1, 0xF5-0xFF); one special token more is the minimum.
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => TokenizerFiles.WriteByteLevelBpe(TokenizerTestFiles.NewDir(), 243));
        Assert.Contains("at least 243 byte tokens", e.Message);
    }

    [Fact]
    public void A_256_token_vocabulary_drops_bytes_utf8_never_uses_and_still_encodes_any_text()
    {
        string dir = TokenizerTestFiles.NewDir();
        TokenizerFiles.WriteByteLevelBpe(dir, 256, ["<s>", "</s>"]);
        ITextTokenizer t = TokenizerLoader.FromDirectory(dir);
        Assert.Equal(256, t.VocabSize);
        Assert.Equal(254, t.TokenToId("<s>"));
        Assert.Equal(255, t.TokenToId("</s>"));
        const string text = "naïve café — 東京 🚀\n\ttabs";
        Assert.Equal(text, t.Decode(t.Encode(text, addSpecialTokens: false)));
        Assert.All(t.Encode(text, addSpecialTokens: false), id => Assert.InRange(id, 0, 253));
    }

    [Fact]
    public void Word_piece_vocab_loads_and_encodes_known_words()
    {
        string dir = TokenizerTestFiles.NewDir();
        Assert.Equal(150, TokenizerFiles.WriteWordPieceVocab(dir, 150));
        string[] lines = File.ReadAllLines(Path.Combine(dir, "vocab.txt"));
        Assert.Equal(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"], lines[..5]);
        ITextTokenizer t = TokenizerLoader.FromDirectory(dir);
        IReadOnlyList<int> ids = t.Encode("The model");
        Assert.Equal(2, ids[0]);
        Assert.Equal(3, ids[^1]);
        Assert.Equal(t.TokenToId("the"), ids[1]);
        Assert.Equal("the model", t.Decode(ids, skipSpecialTokens: true));
        // A word outside the vocabulary still encodes, through single characters and ##characters.
        Assert.Equal("zebra", t.Decode(t.Encode("Zebra"), skipSpecialTokens: true));
    }
}
