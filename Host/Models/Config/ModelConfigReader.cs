using System.Text.Json;
using System.Text.Json.Nodes;

namespace PeftHost.Models.Config;

/// <summary>Reads <c>config.json</c> into the typed config of its <c>model_type</c>.</summary>
public static class ModelConfigReader
{
    /// <summary>The model types this host can build.</summary>
    public static IReadOnlyList<string> SupportedModelTypes { get; } = ["llama", "mistral", "qwen2", "bert", "gpt2"];

    private static readonly Dictionary<string, string[]> Architectures = new()
    {
        ["llama"] = ["LlamaForCausalLM"],
        ["mistral"] = ["MistralForCausalLM"],
        ["qwen2"] = ["Qwen2ForCausalLM"],
        ["bert"] = ["BertForSequenceClassification", "BertModel"],
        ["gpt2"] = ["GPT2LMHeadModel"],
    };

    /// <summary>Reads a model folder's config.json (or the file itself).</summary>
    /// <exception cref="NotSupportedException">The model_type or architecture is not one this host builds.</exception>
    /// <exception cref="InvalidDataException">A field is missing, has the wrong type or is out of range (<see cref="ModelConfigValidator"/>).</exception>
    public static ModelConfig Read(string path)
    {
        string file = Directory.Exists(path) ? Path.Combine(path, "config.json") : path;
        if (!File.Exists(file)) throw new FileNotFoundException($"No config.json at '{file}'.", file);
        JsonNode? node;
        // Duplicate keys are refused while parsing (JsonObject would throw ArgumentException when first read).
        try { node = JsonNode.Parse(File.ReadAllText(file), documentOptions: new JsonDocumentOptions { AllowDuplicateProperties = false }); }
        catch (JsonException e) { throw new InvalidDataException($"{file}: not valid JSON ({e.Message}).", e); }
        return Parse(node as JsonObject ?? throw new InvalidDataException($"{file}: not a JSON object."), file);
    }

    /// <summary>Parses a config object; <paramref name="source"/> names it in errors.</summary>
    public static ModelConfig Parse(JsonObject json, string source = "config.json")
    {
        var c = new ConfigJson(json, source);
        string modelType = c.String("model_type") ?? throw c.Invalid("no model_type field.");
        if (!Architectures.TryGetValue(modelType, out string[]? known))
            throw new NotSupportedException($"{source}: model_type '{modelType}' is not supported (supported: {string.Join(", ", SupportedModelTypes)}).");
        string architecture = json["architectures"] switch
        {
            null => known[0],
            JsonArray { Count: 0 } => known[0],
            JsonArray { Count: > 0 } a when a[0] is JsonValue v && v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
            var other => throw c.Invalid($"field 'architectures' is {other.ToJsonString()}; expected a list of class names."),
        };
        if (!known.Contains(architecture))
            throw new NotSupportedException($"{source}: architecture '{architecture}' of model_type '{modelType}' is not supported (supported: {string.Join(", ", known)}).");
        if (json["torch_dtype"] is JsonNode dtype && dtype.GetValueKind() != JsonValueKind.String)
            throw c.Invalid($"field 'torch_dtype' is {dtype.ToJsonString()}; expected a dtype name such as \"float32\".");
        ModelConfig config = modelType switch
        {
            "llama" or "mistral" or "qwen2" => Llama(c, modelType, architecture),
            "bert" => Bert(c, architecture),
            _ => Gpt2(c, architecture),
        };
        ModelConfigValidator.Validate(config, source);
        return config;
    }

    private static LlamaConfig Llama(ConfigJson c, string modelType, string architecture)
    {
        int hidden = c.Int("hidden_size"), heads = c.Int("num_attention_heads");
        if (heads < 1) throw c.Invalid($"field 'num_attention_heads' is {heads}; expected at least 1.");
        string act = c.String("hidden_act") ?? "silu";
        if (act != "silu") throw new NotSupportedException($"{c.Source}: hidden_act '{act}' is not supported for {modelType} (supported: silu).");
        if (modelType == "qwen2" && c.Bool("use_sliding_window", false))
            throw new NotSupportedException($"{c.Source}: qwen2 with use_sliding_window=true is not supported.");
        int? window = modelType == "mistral" ? c.Int("sliding_window", null) : null;
        return new LlamaConfig
        {
            ModelType = modelType, Architecture = architecture, Raw = c.Json,
            VocabSize = c.Int("vocab_size"), HiddenSize = hidden, NumLayers = c.Int("num_hidden_layers"), NumHeads = heads,
            MaxPositions = c.Int("max_position_embeddings", 2048)!.Value,
            TieWordEmbeddings = c.Bool("tie_word_embeddings", false),
            IntermediateSize = c.Int("intermediate_size"),
            NumKeyValueHeads = c.Int("num_key_value_heads", heads)!.Value,
            HeadDim = c.Int("head_dim", hidden / heads)!.Value,
            RmsNormEps = c.Double("rms_norm_eps", 1e-6)!.Value,
            RopeTheta = c.Double("rope_theta", 10000)!.Value,
            RopeScaling = Rope(c),
            AttentionBias = c.Bool("attention_bias", false),
            QkvBias = modelType == "qwen2",
            MlpBias = c.Bool("mlp_bias", false),
            AttentionDropout = c.Double("attention_dropout", 0)!.Value,
            SlidingWindow = window,
        };
    }

    private static RopeScaling? Rope(ConfigJson c)
    {
        if (c.Json["rope_scaling"] is not JsonObject r) return null;
        var rc = new ConfigJson(r, c.Source + " rope_scaling");
        string type = rc.String("rope_type") ?? rc.String("type") ?? throw c.Invalid("rope_scaling has no rope_type.");
        return type switch
        {
            "default" => null,
            "linear" => new RopeScaling("linear", rc.Double("factor")),
            "llama3" => new RopeScaling("llama3", rc.Double("factor"), rc.Double("low_freq_factor"), rc.Double("high_freq_factor"), rc.Int("original_max_position_embeddings")),
            _ => throw new NotSupportedException($"{c.Source}: rope_scaling type '{type}' is not supported (supported: linear, llama3)."),
        };
    }

    private static BertConfig Bert(ConfigJson c, string architecture)
    {
        string pos = c.String("position_embedding_type") ?? "absolute";
        if (pos != "absolute") throw new NotSupportedException($"{c.Source}: position_embedding_type '{pos}' is not supported (supported: absolute).");
        int labels = c.Int("num_labels", null) ?? (c.Json["id2label"] is JsonObject ids ? ids.Count : 2);
        return new BertConfig
        {
            ModelType = "bert", Architecture = architecture, Raw = c.Json,
            VocabSize = c.Int("vocab_size"), HiddenSize = c.Int("hidden_size"), NumLayers = c.Int("num_hidden_layers"), NumHeads = c.Int("num_attention_heads"),
            MaxPositions = c.Int("max_position_embeddings", 512)!.Value,
            IntermediateSize = c.Int("intermediate_size"),
            TypeVocabSize = c.Int("type_vocab_size", 2)!.Value,
            LayerNormEps = c.Double("layer_norm_eps", 1e-12)!.Value,
            HiddenDropout = c.Double("hidden_dropout_prob", 0.1)!.Value,
            AttentionDropout = c.Double("attention_probs_dropout_prob", 0.1)!.Value,
            ClassifierDropout = c.Double("classifier_dropout", null),
            HiddenAct = Activation(c, c.String("hidden_act") ?? "gelu"),
            NumLabels = labels,
            PadTokenId = c.Int("pad_token_id", 0)!.Value,
        };
    }

    private static Gpt2Config Gpt2(ConfigJson c, string architecture)
    {
        int hidden = c.Int("n_embd");
        if (c.Bool("reorder_and_upcast_attn", false)) throw new NotSupportedException($"{c.Source}: reorder_and_upcast_attn=true is not supported.");
        return new Gpt2Config
        {
            ModelType = "gpt2", Architecture = architecture, Raw = c.Json,
            VocabSize = c.Int("vocab_size"), HiddenSize = hidden, NumLayers = c.Int("n_layer"), NumHeads = c.Int("n_head"),
            MaxPositions = c.Int("n_positions", 1024)!.Value,
            TieWordEmbeddings = c.Bool("tie_word_embeddings", true),
            InnerSize = c.Int("n_inner", null) ?? 4 * hidden,
            LayerNormEps = c.Double("layer_norm_epsilon", 1e-5)!.Value,
            Activation = Activation(c, c.String("activation_function") ?? "gelu_new"),
            EmbdDropout = c.Double("embd_pdrop", 0.1)!.Value,
            AttnDropout = c.Double("attn_pdrop", 0.1)!.Value,
            ResidDropout = c.Double("resid_pdrop", 0.1)!.Value,
            ScaleAttnWeights = c.Bool("scale_attn_weights", true),
            ScaleAttnByInverseLayerIdx = c.Bool("scale_attn_by_inverse_layer_idx", false),
        };
    }

    private static string Activation(ConfigJson c, string name) =>
        name is "gelu" or "gelu_new" or "gelu_pytorch_tanh" or "relu" ? name
            : throw new NotSupportedException($"{c.Source}: activation '{name}' is not supported (supported: gelu, gelu_new, gelu_pytorch_tanh, relu).");
}
