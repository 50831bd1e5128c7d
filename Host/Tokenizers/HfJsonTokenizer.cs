using System.Text.Json;

namespace PeftHost.Tokenizers;

/// <summary>
/// A Hugging Face tokenizer.json pipeline: added tokens, normalizer, pre-tokenizer, BPE model,
/// post-processor and decoder, run in the same order as the <c>tokenizers</c> library.
/// </summary>
internal sealed class HfJsonTokenizer : ITextTokenizer
{
    private readonly BpeModel _model;
    private readonly HfNormalizer? _normalizer;
    private readonly HfPreTokenizer? _preTokenizer;
    private readonly HfDecoder? _decoder;
    private readonly HfPostProcessor _postProcessor;
    private readonly AddedTokenMatcher _rawAdded;
    private readonly AddedTokenMatcher _normalizedAdded;
    private readonly Dictionary<string, int> _tokenToId;
    private readonly Dictionary<int, string> _idToToken;
    private readonly HashSet<int> _specialIds;
    private readonly bool _cleanUpSpaces;

    private HfJsonTokenizer(
        BpeModel model, HfNormalizer? normalizer, HfPreTokenizer? preTokenizer, HfDecoder? decoder,
        List<AddedToken> added, TokenizerConfig config, Func<Func<string, int?>, HfPostProcessor> postProcessor, string path)
    {
        _model = model;
        _normalizer = normalizer;
        _preTokenizer = preTokenizer;
        _decoder = decoder;
        _rawAdded = new AddedTokenMatcher(added.Where(t => !t.Normalized));
        _normalizedAdded = new AddedTokenMatcher(added.Where(t => t.Normalized));
        _tokenToId = new Dictionary<string, int>(model.Vocab, StringComparer.Ordinal);
        foreach (AddedToken t in added)
        {
            _tokenToId[t.Content] = t.Id;
        }

        _idToToken = [];
        foreach ((string token, int id) in _tokenToId)
        {
            _idToToken[id] = token;
        }

        _specialIds = added.Where(t => t.Special).Select(t => t.Id).ToHashSet();
        _postProcessor = postProcessor(TokenToId);
        foreach (int id in _postProcessor.FixedIds)
        {
            if (!_idToToken.ContainsKey(id))
            {
                throw new TokenizerLoadException(path, "post_processor", $"adds the token id {id}, which is neither in model.vocab nor in added_tokens.");
            }
        }

        _cleanUpSpaces = config.CleanUpTokenizationSpaces;
        BosTokenId = Lookup(config.BosToken, "bos_token", path);
        PadTokenId = Lookup(config.PadToken, "pad_token", path);
        var eos = new List<int>();
        if (Lookup(config.EosToken, "eos_token", path) is int e)
        {
            eos.Add(e);
        }

        eos.AddRange(config.GenerationEosTokenIds.Where(id => !eos.Contains(id)));
        EosTokenIds = eos;
        ChatTemplate = config.ChatTemplate is null ? null : ChatTemplate.Deferred(config.ChatTemplate, config.SpecialTokensMap(), config.ChatTemplateOrigin);
    }

    public int VocabSize => _idToToken.Count;

    public int? BosTokenId { get; }

    public IReadOnlyList<int> EosTokenIds { get; }

    public int? PadTokenId { get; }

    public ChatTemplate? ChatTemplate { get; }

    public static HfJsonTokenizer Load(string path, TokenizerConfig config)
    {
        using JsonDocument doc = JsonFields.Parse(path);
        var root = new JsonFields(path, doc.RootElement, "");
        BpeModel model = BpeModel.Read(root.Required("model"));
        var added = new List<AddedToken>();
        if (root.TryGet("added_tokens", out JsonFields list))
        {
            added.AddRange(list.Items().Select(AddedToken.Read));
        }

        HfNormalizer? normalizer = root.TryGet("normalizer", out JsonFields n) ? HfNormalizer.Read(n) : null;
        HfPreTokenizer? pre = root.TryGet("pre_tokenizer", out JsonFields p) ? HfPreTokenizer.Read(p) : null;
        HfDecoder? decoder = root.TryGet("decoder", out JsonFields d) ? HfDecoder.Read(d) : null;
        JsonFields? post = root.TryGet("post_processor", out JsonFields pp) ? pp : null;

        HfPostProcessor MakePost(Func<string, int?> toId)
        {
            if (post is JsonFields postFields)
            {
                return HfPostProcessor.Read(postFields, toId);
            }

            // No post-processor in the file: transformers falls back on add_bos_token / add_eos_token.
            int? bos = config.AddBosToken == true && config.BosToken is string b ? toId(b) : null;
            int? eos = config.AddEosToken == true && config.EosToken is string e ? toId(e) : null;
            return bos is null && eos is null ? HfPostProcessor.None : HfPostProcessor.BosEos(bos, eos);
        }

        return new HfJsonTokenizer(model, normalizer, pre, decoder, added, config, MakePost, path);
    }

    public IReadOnlyList<int> Encode(string text, bool addSpecialTokens = true)
    {
        List<int> ids = EncodeRaw(text);
        return addSpecialTokens ? _postProcessor.Apply(ids, null).Ids : ids;
    }

    public EncodedPair EncodePair(string first, string second, bool addSpecialTokens = true)
    {
        List<int> a = EncodeRaw(first);
        List<int> b = EncodeRaw(second);
        if (!addSpecialTokens)
        {
            return new EncodedPair([.. a, .. b], [.. Enumerable.Repeat(0, a.Count), .. Enumerable.Repeat(1, b.Count)]);
        }

        (List<int> ids, List<int> types) = _postProcessor.Apply(a, b);
        return new EncodedPair(ids, types);
    }

    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = false)
    {
        var tokens = new List<string>();
        foreach (int id in ids)
        {
            if (skipSpecialTokens && _specialIds.Contains(id))
            {
                continue;
            }

            if (_idToToken.TryGetValue(id, out string? token))
            {
                tokens.Add(token);
            }
        }

        string text = _decoder is null ? string.Join(" ", tokens) : _decoder.Decode(tokens);
        return _cleanUpSpaces ? CleanUp(text) : text;
    }

    public int? TokenToId(string token) => _tokenToId.TryGetValue(token, out int id) ? id : null;

    public string? IdToToken(int id) => _idToToken.TryGetValue(id, out string? t) ? t : null;

    private List<int> EncodeRaw(string text)
    {
        var ids = new List<int>();
        foreach (AddedTokenMatcher.Piece raw in _rawAdded.Split(text))
        {
            if (raw.Token is not null)
            {
                ids.Add(raw.Token.Id);
                continue;
            }

            string normalized = _normalizer?.Normalize(raw.Text) ?? raw.Text;
            foreach (AddedTokenMatcher.Piece piece in _normalizedAdded.Split(normalized))
            {
                if (piece.Token is not null)
                {
                    ids.Add(piece.Token.Id);
                    continue;
                }

                bool atStart = raw.Offset == 0 && piece.Offset == 0;
                IEnumerable<string> words = _preTokenizer?.PreTokenize(piece.Text, atStart) ?? [piece.Text];
                foreach (string word in words)
                {
                    _model.Tokenize(word, ids);
                }
            }
        }

        return ids;
    }

    private int? Lookup(string? token, string field, string path)
    {
        if (token is null)
        {
            return null;
        }

        return TokenToId(token) ?? throw new TokenizerLoadException(path, "added_tokens", $"the {field} '{token}' named by tokenizer_config.json is neither in model.vocab nor in added_tokens.");
    }

    /// <summary>transformers' clean_up_tokenization: drops the space before punctuation and English contractions.</summary>
    private static string CleanUp(string text) => text
        .Replace(" .", ".", StringComparison.Ordinal).Replace(" ?", "?", StringComparison.Ordinal)
        .Replace(" !", "!", StringComparison.Ordinal).Replace(" ,", ",", StringComparison.Ordinal)
        .Replace(" ' ", "'", StringComparison.Ordinal).Replace(" n't", "n't", StringComparison.Ordinal)
        .Replace(" 'm", "'m", StringComparison.Ordinal).Replace(" 's", "'s", StringComparison.Ordinal)
        .Replace(" 've", "'ve", StringComparison.Ordinal).Replace(" 're", "'re", StringComparison.Ordinal);
}
