using System.Text.Json;

namespace PeftHost.Tokenizers;

/// <summary>
/// What the loader reads from tokenizer_config.json, special_tokens_map.json and generation_config.json:
/// special token strings, bos/eos flags, lower-casing and the chat template.
/// </summary>
public sealed record TokenizerConfig
{
    /// <summary>bos_token, or null.</summary>
    public string? BosToken { get; init; }

    /// <summary>eos_token, or null.</summary>
    public string? EosToken { get; init; }

    /// <summary>pad_token, or null.</summary>
    public string? PadToken { get; init; }

    /// <summary>unk_token, or null.</summary>
    public string? UnkToken { get; init; }

    /// <summary>add_bos_token when the file sets it.</summary>
    public bool? AddBosToken { get; init; }

    /// <summary>add_eos_token when the file sets it.</summary>
    public bool? AddEosToken { get; init; }

    /// <summary>do_lower_case (BERT); true when absent, as in transformers' BertTokenizer.</summary>
    public bool DoLowerCase { get; init; } = true;

    /// <summary>clean_up_tokenization_spaces when the file sets it.</summary>
    public bool CleanUpTokenizationSpaces { get; init; }

    /// <summary>The Jinja chat template text, or null.</summary>
    public string? ChatTemplate { get; init; }

    /// <summary>Where <see cref="ChatTemplate"/> was read (the file and key), for error messages; null when there is none.</summary>
    public string? ChatTemplateOrigin { get; init; }

    /// <summary>generation_config.json's eos_token_id (one or several), empty when absent.</summary>
    public IReadOnlyList<int> GenerationEosTokenIds { get; init; } = [];

    /// <summary>Reads the configuration files of a model directory; each file is optional.</summary>
    /// <param name="modelDir">The directory.</param>
    /// <returns>The configuration.</returns>
    public static TokenizerConfig Read(string modelDir)
    {
        var config = new TokenizerConfig();
        string special = Path.Combine(modelDir, "special_tokens_map.json");
        if (File.Exists(special))
        {
            using JsonDocument doc = JsonFields.Parse(special);
            var f = new JsonFields(special, doc.RootElement, "");
            config = config with
            {
                BosToken = f.OptionalTokenString("bos_token"),
                EosToken = f.OptionalTokenString("eos_token"),
                PadToken = f.OptionalTokenString("pad_token"),
                UnkToken = f.OptionalTokenString("unk_token"),
            };
        }

        string tc = Path.Combine(modelDir, "tokenizer_config.json");
        if (File.Exists(tc))
        {
            using JsonDocument doc = JsonFields.Parse(tc);
            var f = new JsonFields(tc, doc.RootElement, "");
            string? template = ReadChatTemplate(f);
            config = config with
            {
                BosToken = f.OptionalTokenString("bos_token") ?? config.BosToken,
                EosToken = f.OptionalTokenString("eos_token") ?? config.EosToken,
                PadToken = f.OptionalTokenString("pad_token") ?? config.PadToken,
                UnkToken = f.OptionalTokenString("unk_token") ?? config.UnkToken,
                AddBosToken = f.OptionalBoolOrNull("add_bos_token"),
                AddEosToken = f.OptionalBoolOrNull("add_eos_token"),
                DoLowerCase = f.OptionalBool("do_lower_case", true),
                CleanUpTokenizationSpaces = f.OptionalBool("clean_up_tokenization_spaces", false),
                ChatTemplate = template,
                ChatTemplateOrigin = template is null ? null : $"{tc} chat_template",
            };
        }

        string jinja = Path.Combine(modelDir, "chat_template.jinja");
        if (config.ChatTemplate is null && File.Exists(jinja))
        {
            config = config with { ChatTemplate = File.ReadAllText(jinja), ChatTemplateOrigin = jinja };
        }

        string gc = Path.Combine(modelDir, "generation_config.json");
        if (File.Exists(gc))
        {
            using JsonDocument doc = JsonFields.Parse(gc);
            var f = new JsonFields(gc, doc.RootElement, "");
            if (f.TryGet("eos_token_id", out JsonFields eos))
            {
                config = config with
                {
                    GenerationEosTokenIds = eos.Element.ValueKind == JsonValueKind.Array
                        ? eos.Items().Select(i => i.AsInt()).ToArray()
                        : [f.RequiredInt("eos_token_id")],
                };
            }
        }

        return config;
    }

    /// <summary>The special tokens a chat template sees (transformers' special_tokens_map: only the ones set).</summary>
    public IReadOnlyDictionary<string, string> SpecialTokensMap()
    {
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        if (BosToken is not null) map["bos_token"] = BosToken;
        if (EosToken is not null) map["eos_token"] = EosToken;
        if (UnkToken is not null) map["unk_token"] = UnkToken;
        if (PadToken is not null) map["pad_token"] = PadToken;
        return map;
    }

    private static string? ReadChatTemplate(JsonFields f)
    {
        if (!f.TryGet("chat_template", out JsonFields t))
        {
            return null;
        }

        if (t.Element.ValueKind == JsonValueKind.String)
        {
            return t.Element.GetString();
        }

        // Newer files list named templates; "default" is the one apply_chat_template uses.
        foreach (JsonFields item in t.Items())
        {
            if (item.RequiredString("name") == "default")
            {
                return item.RequiredString("template");
            }
        }

        throw t.Error(null, "lists named templates but none is named 'default'.");
    }
}
