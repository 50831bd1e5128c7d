using System.Text.Json.Nodes;

namespace PeftHost.Engine.Export;

/// <summary>
/// llama.cpp's <c>tokenizer.ggml.pre</c> for a tokenizer.json, read from its pre-tokenizer itself
/// (convert_hf_to_gguf.py hashes the token ids of a probe text, which cannot know a tokenizer made
/// here): GPT-2's byte-level regex is <c>gpt-2</c>, Llama 3's split regex (digits in runs of at most
/// three) <c>llama-bpe</c>, Qwen2's (single digits) <c>qwen2</c>. Anything else is refused with the
/// reason: llama.cpp would otherwise split words and digits its own way and give other ids.
/// </summary>
public static class GgufPreTokenizer
{
    /// <summary>The split regex of Llama 3's tokenizer.json (llama.cpp's LLAMA_VOCAB_PRE_TYPE_LLAMA3).</summary>
    public const string Llama3Pattern = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    /// <summary>The split regex of Qwen2's tokenizer.json (llama.cpp's LLAMA_VOCAB_PRE_TYPE_QWEN2).</summary>
    public const string Qwen2Pattern = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    /// <summary>The name for the tokenizer.json object <paramref name="tokenizer"/> read from <paramref name="path"/>.</summary>
    /// <exception cref="NotSupportedException">A pre-tokenizer or normalizer llama.cpp has no equivalent for (the message says which and what is supported).</exception>
    public static string Choose(JsonObject tokenizer, string path)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        JsonNode? normalizer = tokenizer["normalizer"];
        JsonNode? pre = tokenizer["pre_tokenizer"];
        string? name = Match(pre);
        if (name is null)
        {
            throw new NotSupportedException(
                $"{path}: pre_tokenizer {Describe(pre)} has no llama.cpp equivalent (tokenizer.ggml.pre): GGUF export knows GPT-2's ByteLevel regex (gpt-2), " +
                "Llama 3's Split regex + ByteLevel (llama-bpe) and Qwen2's (qwen2); llama.cpp would split this text differently and give other token ids.");
        }
        string? normalizerType = normalizer is JsonObject n ? n["type"]?.GetValue<string>() : null;
        if (normalizerType is not null && !(normalizerType == "NFC" && name == "qwen2"))
        {
            throw new NotSupportedException($"{path}: normalizer '{normalizerType}' has no llama.cpp equivalent for pre-tokenizer {name}: llama.cpp does not normalize text before splitting it.");
        }
        return name;
    }

    private static string? Match(JsonNode? pre)
    {
        if (pre is not JsonObject o) return null;
        string? type = o["type"]?.GetValue<string>();
        if (type == "ByteLevel")
            return Flag(o, "use_regex", true) && !Flag(o, "add_prefix_space", false) ? "gpt-2" : null;
        if (type != "Sequence" || o["pretokenizers"] is not JsonArray steps) return null;
        if (steps.Count == 1) return Match(steps[0]);
        if (steps.Count != 2 || steps[0] is not JsonObject split || steps[1] is not JsonObject byteLevel) return null;
        if (split["type"]?.GetValue<string>() != "Split" || byteLevel["type"]?.GetValue<string>() != "ByteLevel") return null;
        if (Flag(byteLevel, "use_regex", true) || Flag(byteLevel, "add_prefix_space", false)) return null;
        if (split["behavior"]?.GetValue<string>() != "Isolated" || Flag(split, "invert", false)) return null;
        string? regex = split["pattern"]?["Regex"]?.GetValue<string>();
        return regex switch
        {
            Llama3Pattern => "llama-bpe",
            Qwen2Pattern => "qwen2",
            _ => null,
        };
    }

    private static bool Flag(JsonObject o, string key, bool fallback) => o[key] is JsonValue v && v.TryGetValue(out bool b) ? b : fallback;

    private static string Describe(JsonNode? pre)
    {
        if (pre is null) return "(none)";
        string text = pre.ToJsonString();
        return text.Length > 300 ? text[..300] + "..." : text;
    }
}
