using System.Text;
using System.Text.Json;
using Microsoft.ML.Tokenizers;

namespace PeftHost.Tokenizers;

/// <summary>
/// tokenizer.json's <c>model</c> of type BPE. The merge loop is Microsoft.ML.Tokenizers'
/// <see cref="BpeTokenizer"/> (a port of Hugging Face's); this class adds what that one lacks:
/// <c>byte_fallback</c> (SentencePiece's &lt;0xNN&gt; tokens) and <c>ignore_merges</c> (Llama 3).
/// </summary>
internal sealed class BpeModel
{
    private readonly BpeTokenizer _bpe;
    private readonly Dictionary<string, int> _vocab;
    private readonly bool _byteFallback;
    private readonly bool _ignoreMerges;
    private readonly bool _fuseUnknown;
    private readonly int? _unknownId;
    private readonly bool _hasAffixes;

    private BpeModel(BpeTokenizer bpe, Dictionary<string, int> vocab, bool byteFallback, bool ignoreMerges, bool fuseUnknown, int? unknownId, bool hasAffixes)
    {
        _bpe = bpe;
        _vocab = vocab;
        _byteFallback = byteFallback;
        _ignoreMerges = ignoreMerges;
        _fuseUnknown = fuseUnknown;
        _unknownId = unknownId;
        _hasAffixes = hasAffixes;
    }

    public IReadOnlyDictionary<string, int> Vocab => _vocab;

    public static BpeModel Read(JsonFields model)
    {
        string type = model.OptionalString("type") ?? "BPE";
        if (type != "BPE")
        {
            throw model.Error("type", $"model '{type}' is not supported here (supported: BPE; WordPiece is read from vocab.txt).");
        }

        if (model.TryGet("dropout", out JsonFields dropout) && dropout.Element.ValueKind == JsonValueKind.Number && dropout.Element.GetDouble() > 0)
        {
            throw model.Error("dropout", "BPE dropout is a training-time option and is not supported.");
        }

        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach ((string token, JsonFields id) in model.Required("vocab").Properties())
        {
            if (id.Element.ValueKind != JsonValueKind.Number || !id.Element.TryGetInt32(out int value))
            {
                throw id.Error(null, "must be an integer id.");
            }

            vocab[token] = value;
        }

        // Two tokens with one id cannot be decoded (and the merge table refuses them).
        var byId = new Dictionary<int, string>();
        foreach ((string token, int id) in vocab)
        {
            if (id < 0)
            {
                throw model.Error("vocab", $"token '{token}' has the negative id {id}.");
            }

            if (!byId.TryAdd(id, token))
            {
                throw model.Error("vocab", $"tokens '{byId[id]}' and '{token}' both have id {id}.");
            }
        }

        if (vocab.Count == 0)
        {
            throw model.Error("vocab", "is empty.");
        }

        var merges = new List<string>();
        if (model.TryGet("merges", out JsonFields mergeList))
        {
            foreach (JsonFields m in mergeList.Items())
            {
                merges.Add(ReadMerge(m));
            }
        }

        string? unk = model.OptionalString("unk_token");
        string? prefix = NullIfEmpty(model.OptionalString("continuing_subword_prefix"));
        string? suffix = NullIfEmpty(model.OptionalString("end_of_word_suffix"));
        int? unkId = null;
        if (unk is not null)
        {
            unkId = vocab.TryGetValue(unk, out int u) ? u : throw model.Error("unk_token", $"'{unk}' is not in model.vocab.");
        }

        bool fuseUnk = model.OptionalBool("fuse_unk", false);
        BpeTokenizer bpe;
        try
        {
            bpe = BpeTokenizer.Create(new BpeOptions(vocab)
            {
                Merges = merges,
                UnknownToken = unk,
                FuseUnknownTokens = fuseUnk,
                ContinuingSubwordPrefix = prefix,
                EndOfWordSuffix = suffix,
            });
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException)
        {
            throw new TokenizerLoadException(model.FilePath, model.Child("merges"), e.Message, e);
        }

        return new BpeModel(bpe, vocab, model.OptionalBool("byte_fallback", false), model.OptionalBool("ignore_merges", false), fuseUnk, unkId, prefix is not null || suffix is not null);
    }

    /// <summary>Appends the ids of one pre-tokenized word.</summary>
    public void Tokenize(string word, List<int> ids)
    {
        if (word.Length == 0)
        {
            return;
        }

        if (_ignoreMerges && _vocab.TryGetValue(word, out int whole))
        {
            ids.Add(whole);
            return;
        }

        if (!_byteFallback || _hasAffixes)
        {
            ids.AddRange(_bpe.EncodeToIds(word, considerPreTokenization: false, considerNormalization: false));
            return;
        }

        // Characters outside the vocabulary can take part in no merge, so the word is cut at them:
        // known runs go through BPE, each unknown character becomes its UTF-8 byte tokens.
        int runStart = 0;
        bool lastWasUnknown = false;
        int i = 0;
        while (i < word.Length)
        {
            int len = char.IsSurrogatePair(word, i) ? 2 : 1;
            string ch = word.Substring(i, len);
            if (_vocab.ContainsKey(ch))
            {
                i += len;
                lastWasUnknown = false;
                continue;
            }

            if (i > runStart)
            {
                ids.AddRange(_bpe.EncodeToIds(word[runStart..i], considerPreTokenization: false, considerNormalization: false));
            }

            if (AppendByteTokens(ch, ids))
            {
                lastWasUnknown = false;
            }
            else
            {
                if (_unknownId is int unk && !(_fuseUnknown && lastWasUnknown))
                {
                    ids.Add(unk);
                }

                lastWasUnknown = true;
            }

            i += len;
            runStart = i;
        }

        if (runStart < word.Length)
        {
            ids.AddRange(_bpe.EncodeToIds(word[runStart..], considerPreTokenization: false, considerNormalization: false));
        }
    }

    private bool AppendByteTokens(string ch, List<int> ids)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(ch);
        var found = new int[bytes.Length];
        for (int b = 0; b < bytes.Length; b++)
        {
            if (!_vocab.TryGetValue($"<0x{bytes[b]:X2}>", out found[b]))
            {
                return false;
            }
        }

        ids.AddRange(found);
        return true;
    }

    private static string ReadMerge(JsonFields m)
    {
        if (m.Element.ValueKind == JsonValueKind.String)
        {
            string s = m.Element.GetString()!;
            int space = s.IndexOf(' ', StringComparison.Ordinal);
            if (space <= 0 || space == s.Length - 1 || s.IndexOf(' ', space + 1) >= 0)
            {
                throw m.Error(null, $"merge \"{s}\" must be two tokens separated by one space.");
            }

            return s;
        }

        if (m.Element.ValueKind == JsonValueKind.Array && m.Element.GetArrayLength() == 2
            && m.Element[0].ValueKind == JsonValueKind.String && m.Element[1].ValueKind == JsonValueKind.String)
        {
            string a = m.Element[0].GetString()!;
            string b = m.Element[1].GetString()!;
            if (a.Contains(' ', StringComparison.Ordinal) || b.Contains(' ', StringComparison.Ordinal))
            {
                throw m.Error(null, $"merge [\"{a}\", \"{b}\"] has a token containing a space, which is not supported.");
            }

            return $"{a} {b}";
        }

        throw m.Error(null, "a merge must be \"a b\" or [\"a\", \"b\"].");
    }

    private static string? NullIfEmpty(string? s) => string.IsNullOrEmpty(s) ? null : s;
}
