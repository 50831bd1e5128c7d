using PeftHost.Tokenizers;
using Xunit;

namespace PeftHost.Formats.Tests.Tokenizers;

/// <summary>Llama 2 / Mistral style BPE: ▁ for spaces, &lt;0xNN&gt; byte fallback (id = 3 + byte here).</summary>
public sealed class SentencePieceBpeTests
{
    private static ITextTokenizer Load()
    {
        string dir = TokenizerTestFiles.NewDir();
        TokenizerTestFiles.Write(dir, "tokenizer.json", TokenizerTestFiles.SentencePieceTiny());
        TokenizerTestFiles.Write(dir, "tokenizer_config.json", TokenizerTestFiles.LlamaConfig);
        return TokenizerLoader.FromDirectory(dir);
    }

    [Fact]
    public void Prepend_and_replace_then_merges()
    {
        ITextTokenizer t = Load();
        // "hi hi" -> "▁hi▁hi" -> ▁h i ▁h i -> ▁hi ▁hi.
        Assert.Equal([263, 263], t.Encode("hi hi", addSpecialTokens: false));
        Assert.Equal([1, 263, 263], t.Encode("hi hi"));
        Assert.Equal(1, t.BosTokenId);
        Assert.Equal([2], t.EosTokenIds);
        Assert.Null(t.PadTokenId);
    }

    [Fact]
    public void Unknown_characters_fall_back_to_bytes()
    {
        ITextTokenizer t = Load();
        Assert.Equal([263, 3 + 0x0A], t.Encode("hi\n", addSpecialTokens: false));
        // é is C3 A9 in UTF-8; the leading ▁ stays a token of its own.
        Assert.Equal([259, 3 + 0xC3, 3 + 0xA9], t.Encode("é", addSpecialTokens: false));
        // 😀 is F0 9F 98 80.
        Assert.Equal([259, 3 + 0xF0, 3 + 0x9F, 3 + 0x98, 3 + 0x80], t.Encode("😀", addSpecialTokens: false));
    }

    [Fact]
    public void Decoder_joins_bytes_and_strips_the_leading_space()
    {
        ITextTokenizer t = Load();
        Assert.Equal("hi hi", t.Decode([1, 263, 263], skipSpecialTokens: true));
        Assert.Equal("<s> hi hi", t.Decode([1, 263, 263]));
        foreach (string s in new[] { "hi\n", "é hi", "😀\thi  hi", "日本語", "hi\r\n\r\nhi" })
        {
            Assert.Equal(s, t.Decode(t.Encode(s), skipSpecialTokens: true));
        }
    }

    [Fact]
    public void Invalid_byte_runs_decode_to_replacement_characters()
    {
        ITextTokenizer t = Load();
        Assert.Equal("\uFFFD\uFFFD", t.Decode([3 + 0xC3, 3 + 0xC3]));
    }

    [Fact]
    public void Special_token_in_text_splits_normalization()
    {
        ITextTokenizer t = Load();
        // Each stretch between added tokens is normalized on its own, so "hi" after </s> gets its own ▁.
        Assert.Equal([1, 263, 2, 263], t.Encode("hi</s>hi"));
    }

    [Fact]
    public void Pair_uses_the_template_type_ids()
    {
        EncodedPair p = Load().EncodePair("hi", "hi");
        Assert.Equal([1, 263, 1, 263], p.Ids);
        Assert.Equal([0, 0, 1, 1], p.TypeIds);
    }
}
