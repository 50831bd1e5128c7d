namespace PeftHost.Tokenizers;

/// <summary>
/// tokenizer.json's <c>post_processor</c>: the special tokens added around a sequence or a pair when
/// <c>add_special_tokens</c> is true (TemplateProcessing, BertProcessing, RobertaProcessing; ByteLevel adds nothing).
/// </summary>
internal sealed class HfPostProcessor
{
    private readonly List<Item> _single;
    private readonly List<Item> _pair;

    private HfPostProcessor(List<Item> single, List<Item> pair)
    {
        _single = single;
        _pair = pair;
    }

    /// <summary>An element of a template: fixed token ids or the sequence A or B, with a type id.</summary>
    private readonly record struct Item(int[]? Ids, bool IsB, int TypeId);

    public static HfPostProcessor None { get; } = new([new Item(null, false, 0)], [new Item(null, false, 0), new Item(null, true, 1)]);

    /// <summary>Bos and/or eos around each sequence, as transformers does from <c>add_bos_token</c> / <c>add_eos_token</c>.</summary>
    public static HfPostProcessor BosEos(int? bos, int? eos)
    {
        List<Item> Seq(bool isB, int type)
        {
            var items = new List<Item>();
            if (bos is int b)
            {
                items.Add(new Item([b], false, type));
            }

            items.Add(new Item(null, isB, type));
            if (eos is int e)
            {
                items.Add(new Item([e], false, type));
            }

            return items;
        }

        return new HfPostProcessor(Seq(false, 0), [.. Seq(false, 0), .. Seq(true, 1)]);
    }

    /// <summary>The fixed token ids the templates add (each must name a token of the vocabulary).</summary>
    public IEnumerable<int> FixedIds => _single.Concat(_pair).SelectMany(i => i.Ids ?? []);

    public (List<int> Ids, List<int> TypeIds) Apply(IReadOnlyList<int> a, IReadOnlyList<int>? b)
    {
        var ids = new List<int>();
        var types = new List<int>();
        foreach (Item item in b is null ? _single : _pair)
        {
            IReadOnlyList<int> part = item.Ids ?? (item.IsB ? b! : a);
            ids.AddRange(part);
            types.AddRange(Enumerable.Repeat(item.TypeId, part.Count));
        }

        return (ids, types);
    }

    public static HfPostProcessor Read(JsonFields f, Func<string, int?> tokenToId)
    {
        string type = f.RequiredString("type");
        switch (type)
        {
            case "ByteLevel":
                return None;
            case "TemplateProcessing":
                Dictionary<string, int[]> special = ReadSpecialTokens(f, tokenToId);
                return new HfPostProcessor(ReadTemplate(f.Required("single"), special), ReadTemplate(f.Required("pair"), special));
            case "BertProcessing":
            case "RobertaProcessing":
                int cls = ReadTokenPair(f.Required("cls"));
                int sep = ReadTokenPair(f.Required("sep"));
                bool bert = type == "BertProcessing";
                List<Item> single = [new([cls], false, 0), new(null, false, 0), new([sep], false, 0)];
                List<Item> pair = bert
                    ? [.. single, new(null, true, 1), new([sep], false, 1)]
                    : [.. single, new([sep], false, 0), new(null, true, 0), new([sep], false, 0)];
                return new HfPostProcessor(single, pair);
            case "Sequence":
                HfPostProcessor result = None;
                foreach (JsonFields child in f.Required("processors").Items())
                {
                    HfPostProcessor p = Read(child, tokenToId);
                    if (!ReferenceEquals(p, None))
                    {
                        if (!ReferenceEquals(result, None))
                        {
                            throw child.Error(null, "more than one post-processor that adds tokens is not supported.");
                        }

                        result = p;
                    }
                }

                return result;
            default:
                throw f.Error("type", $"post-processor '{type}' is not supported (supported: TemplateProcessing, BertProcessing, RobertaProcessing, ByteLevel, Sequence).");
        }
    }

    private static int ReadTokenPair(JsonFields f)
    {
        JsonFields[] items = f.Items().ToArray();
        if (items.Length != 2)
        {
            throw f.Error(null, "must be [token, id].");
        }

        return items[1].AsInt("must be an integer id.");
    }

    private static Dictionary<string, int[]> ReadSpecialTokens(JsonFields f, Func<string, int?> tokenToId)
    {
        var result = new Dictionary<string, int[]>(StringComparer.Ordinal);
        if (!f.TryGet("special_tokens", out JsonFields tokens))
        {
            return result;
        }

        foreach ((string name, JsonFields value) in tokens.Properties())
        {
            int[] ids = value.TryGet("ids", out JsonFields list)
                ? list.Items().Select(i => i.AsInt("must be an integer id.")).ToArray()
                : [tokenToId(name) ?? throw value.Error(null, $"'{name}' has no ids and is not in the vocabulary.")];
            result[name] = ids;
        }

        return result;
    }

    private static List<Item> ReadTemplate(JsonFields template, Dictionary<string, int[]> special)
    {
        var items = new List<Item>();
        foreach (JsonFields piece in template.Items())
        {
            if (piece.TryGet("SpecialToken", out JsonFields st))
            {
                string id = st.RequiredString("id");
                int[] ids = special.TryGetValue(id, out int[]? found) ? found : throw st.Error("id", $"'{id}' is not listed in special_tokens.");
                items.Add(new Item(ids, false, st.OptionalInt("type_id", 0)));
            }
            else if (piece.TryGet("Sequence", out JsonFields seq))
            {
                string id = seq.RequiredString("id");
                bool isB = id switch
                {
                    "A" => false,
                    "B" => true,
                    _ => throw seq.Error("id", $"must be A or B, found '{id}'."),
                };
                items.Add(new Item(null, isB, seq.OptionalInt("type_id", 0)));
            }
            else
            {
                throw piece.Error(null, "must be {\"SpecialToken\": ...} or {\"Sequence\": ...}.");
            }
        }

        return items;
    }
}
