using System.Text.Json.Nodes;
using PeftHost.Formats.Gguf;

namespace PeftHost.Engine.Export;

/// <summary>
/// The tokenizer.ggml.* keys from a model folder's tokenizer.json (BPE), as convert_hf_to_gguf
/// writes them for a "gpt2"-style BPE vocabulary: tokens by id, token types (1 normal, 3 control,
/// 4 user-defined), merges as "left right", bos/eos ids from config.json, and tokenizer.ggml.pre
/// chosen from the pre-tokenizer (<see cref="GgufPreTokenizer"/>), so llama.cpp splits text as we do. A folder without
/// tokenizer.json gets tokenizer.ggml.model "none" (llama.cpp's LLAMA_VOCAB_TYPE_NONE: ids only).
/// </summary>
public static class GgufTokenizerMetadata
{
    private const int TypeNormal = 1, TypeControl = 3, TypeUserDefined = 4;

    /// <summary>Adds the tokenizer keys for <paramref name="modelFolder"/> to <paramref name="writer"/>.</summary>
    public static void Add(GgufWriter writer, string modelFolder, int vocabSize, JsonObject config)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(config);
        string path = Path.Combine(modelFolder, "tokenizer.json");
        if (!File.Exists(path))
        {
            writer.SetMetadata("tokenizer.ggml.model", GgufValue.FromString("none"));
            AddSpecialIds(writer, config);
            return;
        }
        JsonObject json = JsonNode.Parse(File.ReadAllText(path))?.AsObject() ?? throw new InvalidDataException($"{path}: not a JSON object.");
        JsonObject model = json["model"]?.AsObject() ?? throw new InvalidDataException($"{path}: no 'model'.");
        string type = model["type"]?.GetValue<string>() ?? "BPE";
        if (type != "BPE")
            throw new NotSupportedException($"{path}: GGUF export supports BPE tokenizers (model.type '{type}' is not).");
        JsonObject vocab = model["vocab"]?.AsObject() ?? throw new InvalidDataException($"{path}: no model.vocab.");
        var tokens = new string[vocabSize];
        var types = new int[vocabSize];
        foreach ((string token, JsonNode? id) in vocab)
        {
            int i = id!.GetValue<int>();
            if (i >= 0 && i < vocabSize) { tokens[i] = token; types[i] = TypeNormal; }
        }
        foreach (JsonNode? added in json["added_tokens"]?.AsArray() ?? [])
        {
            int i = added!["id"]!.GetValue<int>();
            if (i < 0 || i >= vocabSize) continue;
            tokens[i] = added["content"]!.GetValue<string>();
            types[i] = added["special"]?.GetValue<bool>() == true ? TypeControl : TypeUserDefined;
        }
        for (int i = 0; i < vocabSize; i++)
        {
            if (tokens[i] is null) { tokens[i] = $"[PAD{i}]"; types[i] = TypeUserDefined; }   // convert_hf_to_gguf's padding of a short vocab
        }
        var merges = new List<string>();
        foreach (JsonNode? m in model["merges"]?.AsArray() ?? [])
        {
            merges.Add(m is JsonArray pair ? $"{pair[0]!.GetValue<string>()} {pair[1]!.GetValue<string>()}" : m!.GetValue<string>());
        }
        writer.SetMetadata("tokenizer.ggml.model", GgufValue.FromString("gpt2"));
        writer.SetMetadata("tokenizer.ggml.pre", GgufValue.FromString(GgufPreTokenizer.Choose(json, path)));
        writer.SetMetadata("tokenizer.ggml.tokens", GgufValue.FromStrings(tokens));
        writer.SetMetadata("tokenizer.ggml.token_type", GgufValue.FromArray(GgufValueType.Int32, types));
        writer.SetMetadata("tokenizer.ggml.merges", GgufValue.FromStrings(merges));
        AddSpecialIds(writer, config);
    }

    private static void AddSpecialIds(GgufWriter writer, JsonObject config)
    {
        if (SingleId(config["bos_token_id"]) is uint bos) writer.SetMetadata("tokenizer.ggml.bos_token_id", GgufValue.FromUInt32(bos));
        if (SingleId(config["eos_token_id"]) is uint eos) writer.SetMetadata("tokenizer.ggml.eos_token_id", GgufValue.FromUInt32(eos));
        if (SingleId(config["pad_token_id"]) is uint pad) writer.SetMetadata("tokenizer.ggml.padding_token_id", GgufValue.FromUInt32(pad));
    }

    private static uint? SingleId(JsonNode? node) => node switch
    {
        JsonValue v when v.TryGetValue(out int id) && id >= 0 => (uint)id,
        JsonArray { Count: > 0 } a when a[0] is JsonValue v0 && v0.TryGetValue(out int id0) && id0 >= 0 => (uint)id0,
        _ => null,
    };
}
