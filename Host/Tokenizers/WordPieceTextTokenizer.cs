using System.Text;
using Microsoft.ML.Tokenizers;

namespace PeftHost.Tokenizers;

/// <summary>BERT's vocab.txt WordPiece tokenizer, on Microsoft.ML.Tokenizers' <see cref="BertTokenizer"/>.</summary>
internal sealed class WordPieceTextTokenizer : ITextTokenizer
{
    private readonly BertTokenizer _bert;
    private readonly string[] _idToToken;
    private readonly Dictionary<string, int> _tokenToId;

    private WordPieceTextTokenizer(BertTokenizer bert, string[] idToToken)
    {
        _bert = bert;
        _idToToken = idToToken;
        _tokenToId = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < idToToken.Length; i++)
        {
            _tokenToId.TryAdd(idToToken[i], i);
        }

        PadTokenId = bert.PaddingTokenId;
        BosTokenId = bert.ClassificationTokenId;
        EosTokenIds = [bert.SeparatorTokenId];
    }

    public int VocabSize => _idToToken.Length;

    public int? BosTokenId { get; }

    public IReadOnlyList<int> EosTokenIds { get; }

    public int? PadTokenId { get; }

    public ChatTemplate? ChatTemplate => null;

    public static WordPieceTextTokenizer Load(string vocabPath, TokenizerConfig config)
    {
        if (!File.Exists(vocabPath))
        {
            throw new TokenizerLoadException(vocabPath, null, "file not found.");
        }

        string[] lines = File.ReadAllLines(vocabPath, Encoding.UTF8);
        // A trailing empty line is a file ending, not a token.
        int count = lines.Length;
        while (count > 0 && lines[count - 1].Length == 0)
        {
            count--;
        }

        string[] tokens = lines[..count];
        // One id per token: a repeated line would make two ids of one token (and Microsoft.ML.Tokenizers refuses it).
        var firstLine = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < tokens.Length; i++)
        {
            if (!firstLine.TryAdd(tokens[i], i))
            {
                throw new TokenizerLoadException(vocabPath, null, $"line {i + 1} repeats the token '{tokens[i]}' of line {firstLine[tokens[i]] + 1}.");
            }
        }

        var options = new BertOptions
        {
            LowerCaseBeforeTokenization = config.DoLowerCase,
            UnknownToken = config.UnkToken ?? "[UNK]",
            SeparatorToken = "[SEP]",
            PaddingToken = config.PadToken ?? "[PAD]",
            ClassificationToken = "[CLS]",
            MaskingToken = "[MASK]",
        };
        foreach (string required in new[] { options.UnknownToken, options.SeparatorToken, options.PaddingToken, options.ClassificationToken, options.MaskingToken })
        {
            if (!tokens.Contains(required, StringComparer.Ordinal))
            {
                throw new TokenizerLoadException(vocabPath, null, $"the special token '{required}' is not in the vocabulary.");
            }
        }

        using var stream = new MemoryStream(Encoding.UTF8.GetBytes(string.Join("\n", tokens) + "\n"));
        try
        {
            return new WordPieceTextTokenizer(BertTokenizer.Create(stream, options), tokens);
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or FormatException)
        {
            throw new TokenizerLoadException(vocabPath, null, $"not a WordPiece vocabulary Microsoft.ML.Tokenizers can load ({e.Message}).", e);
        }
    }

    public IReadOnlyList<int> Encode(string text, bool addSpecialTokens = true) =>
        _bert.EncodeToIds(text, addSpecialTokens, considerPreTokenization: true, considerNormalization: true);

    public EncodedPair EncodePair(string first, string second, bool addSpecialTokens = true)
    {
        IReadOnlyList<int> a = _bert.EncodeToIds(first, addSpecialTokens: false, considerPreTokenization: true, considerNormalization: true);
        IReadOnlyList<int> b = _bert.EncodeToIds(second, addSpecialTokens: false, considerPreTokenization: true, considerNormalization: true);
        if (!addSpecialTokens)
        {
            return new EncodedPair([.. a, .. b], [.. Enumerable.Repeat(0, a.Count), .. Enumerable.Repeat(1, b.Count)]);
        }

        return new EncodedPair(_bert.BuildInputsWithSpecialTokens(a, b), _bert.CreateTokenTypeIdsFromSequences(a, b));
    }

    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = false) => _bert.Decode(ids, skipSpecialTokens);

    public int? TokenToId(string token) => _tokenToId.TryGetValue(token, out int id) ? id : null;

    public string? IdToToken(int id) => id >= 0 && id < _idToToken.Length ? _idToToken[id] : null;
}
