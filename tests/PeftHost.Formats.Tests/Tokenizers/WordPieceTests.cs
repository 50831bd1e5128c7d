using PeftHost.Tokenizers;
using Xunit;

namespace PeftHost.Formats.Tests.Tokenizers;

/// <summary>BERT vocab.txt WordPiece with a tiny vocabulary.</summary>
public sealed class WordPieceTests
{
    private const string Vocab = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nun\n##aff\n##able\nthe\n,\n";

    private static ITextTokenizer Load(bool lowerCase)
    {
        string dir = TokenizerTestFiles.NewDir();
        TokenizerTestFiles.Write(dir, "vocab.txt", Vocab);
        TokenizerTestFiles.Write(dir, "tokenizer_config.json", $$"""{ "do_lower_case": {{(lowerCase ? "true" : "false")}} }""");
        return TokenizerLoader.FromDirectory(dir);
    }

    [Fact]
    public void Splits_into_word_pieces_with_cls_and_sep()
    {
        ITextTokenizer t = Load(lowerCase: true);
        Assert.Equal([2, 5, 6, 7, 3], t.Encode("unaffable"));
        Assert.Equal([5, 6, 7], t.Encode("unaffable", addSpecialTokens: false));
        Assert.Equal([2, 5, 6, 7, 9, 8, 3], t.Encode("UnAffable, THE"));
        Assert.Equal(0, t.PadTokenId);
        Assert.Equal(10, t.VocabSize);
        Assert.Equal("##aff", t.IdToToken(6));
    }

    [Fact]
    public void Without_lower_casing_unknown_case_is_unk()
    {
        Assert.Equal([2, 1, 3], Load(lowerCase: false).Encode("UnAffable"));
    }

    [Fact]
    public void Pairs_carry_token_type_ids()
    {
        EncodedPair p = Load(lowerCase: true).EncodePair("unaffable", "the");
        Assert.Equal([2, 5, 6, 7, 3, 8, 3], p.Ids);
        Assert.Equal([0, 0, 0, 0, 0, 1, 1], p.TypeIds);
    }

    [Fact]
    public void Decodes_joining_word_pieces()
    {
        ITextTokenizer t = Load(lowerCase: true);
        Assert.Equal("unaffable the", t.Decode([2, 5, 6, 7, 8, 3], skipSpecialTokens: true));
    }

    [Fact]
    public void A_word_piece_tokenizer_json_beside_vocab_txt_defers_to_vocab_txt()
    {
        string dir = TokenizerTestFiles.NewDir();
        TokenizerTestFiles.Write(dir, "vocab.txt", Vocab);
        TokenizerTestFiles.Write(dir, "tokenizer.json", """{ "model": { "type": "WordPiece", "vocab": { "[UNK]": 0 } } }""");
        Assert.Equal([2, 5, 6, 7, 3], TokenizerLoader.FromDirectory(dir).Encode("unaffable"));
    }
}
