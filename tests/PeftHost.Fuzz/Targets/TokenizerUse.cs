using PeftHost.Tokenizers;

namespace PeftHost.Fuzz.Targets;

/// <summary>What every tokenizer target does with a tokenizer that loaded: encode, decode and look up, checking the ids.</summary>
internal static class TokenizerUse
{
    private static readonly string[] Texts =
    [
        "", " ", "Hello world!", "  two  spaces\tand a tab\nnew line", "héllo wörld ñ 中文 𝄞 🙂", "<s>[CLS] </s> <|endoftext|> [SEP]",
        "it's 1234567 o'clock, isn't it?", "\u0000\u00ff\ufffd",
    ];

    public static void Exercise(string target, ITextTokenizer tokenizer)
    {
        int vocab = tokenizer.VocabSize;
        foreach (string text in Texts)
        {
            foreach (bool special in new[] { true, false })
            {
                IReadOnlyList<int> ids = tokenizer.Encode(text, special);
                foreach (int id in ids)
                    if (tokenizer.IdToToken(id) is null)
                        throw new FuzzOracleException($"{target}: encoding \"{text}\" gave id {id}, which the tokenizer cannot name (vocab {vocab})");
                _ = tokenizer.Decode(ids, skipSpecialTokens: !special);
            }
            EncodedPair pair = tokenizer.EncodePair(text, "second", addSpecialTokens: true);
            if (pair.Ids.Count != pair.TypeIds.Count)
                throw new FuzzOracleException($"{target}: a pair encoded to {pair.Ids.Count} ids but {pair.TypeIds.Count} type ids");
        }
        // Ids a caller may pass: out of range ones are skipped, never a crash.
        _ = tokenizer.Decode([-1, 0, 1, vocab - 1, vocab, int.MaxValue, int.MinValue]);
        _ = tokenizer.IdToToken(-1);
        _ = tokenizer.IdToToken(int.MaxValue);
        foreach (int? id in new[] { tokenizer.BosTokenId, tokenizer.PadTokenId })
            if (id is int i && tokenizer.IdToToken(i) is null) throw new FuzzOracleException($"{target}: special id {i} has no token");
        foreach (int eos in tokenizer.EosTokenIds) _ = tokenizer.IdToToken(eos);
    }
}
