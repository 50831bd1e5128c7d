using System.Text.Json.Nodes;
using PeftHost.Abstractions.Config;
using PeftHost.Abstractions.Tuning;

namespace PeftHost.Plugins.PromptTuning;

/// <summary>
/// PEFT's <c>PromptLearningConfig</c>: the fields shared by prompt tuning, prefix tuning and
/// p-tuning. PEFT fills <c>token_dim</c>, <c>num_layers</c> and <c>num_attention_heads</c> from the
/// transformers model config; PeftHost has none, so they must be given where the method needs them
/// (saved adapters always have them).
/// </summary>
public abstract class PromptLearningConfig : TunerConfig
{
    private protected PromptLearningConfig(string peftType, ConfigFields fields) : base(peftType, fields)
    {
        NumVirtualTokens = Required(fields, "num_virtual_tokens", "the number of virtual tokens");
        TokenDim = Required(fields, "token_dim", "the model's hidden size (PEFT reads it from the transformers config, which PeftHost does not have)");
        NumTransformerSubmodules = fields.Has("num_transformer_submodules")
            ? fields.GetInt("num_transformer_submodules", 1)
            : TaskType == "SEQ_2_SEQ_LM" ? 2 : 1;
        NumAttentionHeads = fields.Has("num_attention_heads") ? fields.GetInt("num_attention_heads", 0) : null;
        NumLayers = fields.Has("num_layers") ? fields.GetInt("num_layers", 0) : null;

        if (NumTransformerSubmodules is not (1 or 2))
            throw new TunerConfigException($"adapter config field 'num_transformer_submodules': must be 1 or 2, got {NumTransformerSubmodules}.");
        if (NumAttentionHeads is <= 0) throw new TunerConfigException($"adapter config field 'num_attention_heads': must be a positive integer, got {NumAttentionHeads}.");
        if (NumLayers is <= 0) throw new TunerConfigException($"adapter config field 'num_layers': must be a positive integer, got {NumLayers}.");
    }

    /// <summary>The number of virtual tokens.</summary>
    public int NumVirtualTokens { get; }

    /// <summary>The hidden size of the base model's token embeddings.</summary>
    public int TokenDim { get; }

    /// <summary>1 for decoder-only and encoder-only models, 2 for encoder-decoder (SEQ_2_SEQ_LM).</summary>
    public int NumTransformerSubmodules { get; }

    /// <summary>The base model's number of attention heads (or key/value heads), if given.</summary>
    public int? NumAttentionHeads { get; }

    /// <summary>The base model's number of transformer layers, if given.</summary>
    public int? NumLayers { get; }

    /// <summary>What the tuner model's prompt is.</summary>
    internal abstract PromptKind Kind { get; }

    /// <summary>The number of virtual token indices fed to the encoder (PEFT's prompt_tokens).</summary>
    internal virtual int EncoderTokens => NumVirtualTokens * NumTransformerSubmodules;

    /// <summary>The shape of the saved <c>prompt_embeddings</c>: the encoder's output for the virtual tokens.</summary>
    internal abstract long[] SavedShape { get; }

    /// <summary>
    /// Builds the encoder. <paramref name="direct"/>: only an embedding of <see cref="SavedShape"/>
    /// holding the final prompt, as PEFT builds it in inference mode and for loaded adapters.
    /// </summary>
    internal abstract VirtualTokenEncoder CreateEncoder(bool direct);

    /// <inheritdoc />
    protected sealed override void WriteFields(JsonObject json)
    {
        json["num_virtual_tokens"] = NumVirtualTokens;
        json["token_dim"] = TokenDim;
        json["num_transformer_submodules"] = NumTransformerSubmodules;
        json["num_attention_heads"] = NumAttentionHeads;
        json["num_layers"] = NumLayers;
        WriteMethodFields(json);
    }

    /// <summary>Writes the method's own fields by PEFT's names.</summary>
    protected abstract void WriteMethodFields(JsonObject json);

    private protected static int Required(ConfigFields fields, string name, string what)
    {
        if (!fields.Has(name)) throw new TunerConfigException($"adapter config field '{name}' is missing: set it to {what}.");
        int value = fields.GetInt(name, 0);
        if (value <= 0) throw new TunerConfigException($"adapter config field '{name}': must be a positive integer, got {value}.");
        return value;
    }
}

/// <summary>PEFT's <c>PromptTuningConfig</c>: field names and defaults as in PEFT 0.13.</summary>
public sealed class PromptTuningConfig : PromptLearningConfig
{
    /// <summary>Parses an <c>adapter_config.json</c> object.</summary>
    public PromptTuningConfig(JsonObject json) : this(new ConfigFields(json)) { }

    private PromptTuningConfig(ConfigFields fields) : base(PromptTuningTuner.PeftTypeName, fields)
    {
        PromptTuningInit = fields.GetString("prompt_tuning_init", "RANDOM")!;
        PromptTuningInitText = fields.GetString("prompt_tuning_init_text");
        TokenizerNameOrPath = fields.GetString("tokenizer_name_or_path");
        TokenizerKwargs = fields.GetRaw("tokenizer_kwargs");
        UnknownFields = fields.Remaining();

        if (PromptTuningInit is not ("RANDOM" or "TEXT"))
            throw new TunerConfigException($"adapter config field 'prompt_tuning_init': expected \"RANDOM\" or \"TEXT\", got \"{PromptTuningInit}\".");
        if (PromptTuningInit == "TEXT" && string.IsNullOrEmpty(TokenizerNameOrPath))
            throw new TunerConfigException("adapter config field 'tokenizer_name_or_path': required when prompt_tuning_init is \"TEXT\".");
        if (PromptTuningInit == "TEXT" && PromptTuningInitText is null)
            throw new TunerConfigException("adapter config field 'prompt_tuning_init_text': required when prompt_tuning_init is \"TEXT\".");
        if (TokenizerKwargs is JsonObject { Count: > 0 } && PromptTuningInit != "TEXT")
            throw new TunerConfigException("adapter config field 'tokenizer_kwargs': only allowed when prompt_tuning_init is \"TEXT\".");
    }

    /// <summary>"RANDOM" (standard normal) or "TEXT" (the embeddings of a text's tokens; needs a tokenizer).</summary>
    public string PromptTuningInit { get; }

    /// <summary>The text for "TEXT" initialisation.</summary>
    public string? PromptTuningInitText { get; }

    /// <summary>The tokenizer for "TEXT" initialisation.</summary>
    public string? TokenizerNameOrPath { get; }

    /// <summary>Keyword arguments for the tokenizer, as JSON.</summary>
    public JsonNode? TokenizerKwargs { get; }

    internal override PromptKind Kind => PromptKind.InputEmbeddings;

    internal override long[] SavedShape => [EncoderTokens, TokenDim];

    // TEXT initialisation fills the embedding afterwards (PromptLearningModel: it needs the host's tokenizer).
    internal override VirtualTokenEncoder CreateEncoder(bool direct) => VirtualTokenEncoder.Embedding(EncoderTokens, TokenDim);

    /// <summary>
    /// PEFT's TEXT initialisation: the text's token ids (special tokens included), cut or repeated to
    /// <paramref name="tokens"/> ids (the virtual tokens of every transformer submodule).
    /// </summary>
    /// <exception cref="TunerConfigException">The text gives no token.</exception>
    internal long[] InitTokenIds(IReadOnlyList<int> ids, int tokens)
    {
        if (ids.Count == 0)
            throw new TunerConfigException($"adapter config field 'prompt_tuning_init_text': \"{PromptTuningInitText}\" gives no token to initialise the prompt from.");
        int reps = (tokens + ids.Count - 1) / ids.Count;
        return [.. Enumerable.Repeat(ids, reps).SelectMany(i => i).Take(tokens).Select(i => (long)i)];
    }

    /// <inheritdoc />
    protected override void WriteMethodFields(JsonObject json)
    {
        json["prompt_tuning_init"] = PromptTuningInit;
        json["prompt_tuning_init_text"] = PromptTuningInitText;
        json["tokenizer_name_or_path"] = TokenizerNameOrPath;
        json["tokenizer_kwargs"] = TokenizerKwargs?.DeepClone();
    }
}

/// <summary>PEFT's <c>PrefixTuningConfig</c>: field names and defaults as in PEFT 0.13.</summary>
public sealed class PrefixTuningConfig : PromptLearningConfig
{
    /// <summary>Parses an <c>adapter_config.json</c> object.</summary>
    public PrefixTuningConfig(JsonObject json) : this(new ConfigFields(json)) { }

    private PrefixTuningConfig(ConfigFields fields) : base(PrefixTuningTuner.PeftTypeName, fields)
    {
        EncoderHiddenSize = fields.Has("encoder_hidden_size") ? fields.GetInt("encoder_hidden_size", 0) : TokenDim;
        PrefixProjection = fields.GetBool("prefix_projection", false);
        UnknownFields = fields.Remaining();

        if (NumLayers is null)
            throw new TunerConfigException("adapter config field 'num_layers' is missing: prefix tuning needs the base model's number of layers.");
        if (NumAttentionHeads is null)
            throw new TunerConfigException("adapter config field 'num_attention_heads' is missing: prefix tuning needs the base model's number of (key/value) heads.");
        if (TokenDim % NumAttentionHeads.Value != 0)
            throw new TunerConfigException($"adapter config field 'token_dim': {TokenDim} is not divisible by num_attention_heads {NumAttentionHeads}.");
        if (EncoderHiddenSize <= 0)
            throw new TunerConfigException($"adapter config field 'encoder_hidden_size': must be a positive integer, got {EncoderHiddenSize}.");
    }

    /// <summary>The hidden size of the prefix projection (default: token_dim).</summary>
    public int EncoderHiddenSize { get; }

    /// <summary>Whether the prefix goes through an MLP (Linear, Tanh, Linear) while training.</summary>
    public bool PrefixProjection { get; }

    /// <summary>num_layers * 2 * token_dim: the keys and values of every layer, per virtual token.</summary>
    public long PrefixWidth => (long)NumLayers!.Value * 2 * TokenDim;

    internal override PromptKind Kind => PromptKind.PastKeyValues;

    // PEFT feeds prefix encoders only the first num_virtual_tokens indices.
    internal override int EncoderTokens => NumVirtualTokens;

    internal override long[] SavedShape => [NumVirtualTokens, PrefixWidth];

    internal override VirtualTokenEncoder CreateEncoder(bool direct) =>
        PrefixProjection && !direct
            ? VirtualTokenEncoder.Prefix(NumVirtualTokens, TokenDim, EncoderHiddenSize, PrefixWidth)
            : VirtualTokenEncoder.Embedding(NumVirtualTokens, PrefixWidth);

    /// <inheritdoc />
    protected override void WriteMethodFields(JsonObject json)
    {
        json["encoder_hidden_size"] = EncoderHiddenSize;
        json["prefix_projection"] = PrefixProjection;
    }
}

/// <summary>PEFT's <c>PromptEncoderConfig</c> (p-tuning): field names and defaults as in PEFT 0.13.</summary>
public sealed class PromptEncoderConfig : PromptLearningConfig
{
    /// <summary>Parses an <c>adapter_config.json</c> object.</summary>
    public PromptEncoderConfig(JsonObject json) : this(new ConfigFields(json)) { }

    private PromptEncoderConfig(ConfigFields fields) : base(PTuningTuner.PeftTypeName, fields)
    {
        EncoderReparameterizationType = fields.GetString("encoder_reparameterization_type", "MLP")!;
        EncoderHiddenSize = fields.Has("encoder_hidden_size") ? fields.GetInt("encoder_hidden_size", 0) : TokenDim;
        EncoderNumLayers = fields.GetInt("encoder_num_layers", 2);
        EncoderDropout = fields.GetDouble("encoder_dropout", 0.0);
        UnknownFields = fields.Remaining();

        if (EncoderReparameterizationType is not ("MLP" or "LSTM"))
            throw new TunerConfigException($"adapter config field 'encoder_reparameterization_type': expected \"MLP\" or \"LSTM\", got \"{EncoderReparameterizationType}\".");
        if (EncoderHiddenSize <= 0)
            throw new TunerConfigException($"adapter config field 'encoder_hidden_size': must be a positive integer, got {EncoderHiddenSize}.");
        if (EncoderNumLayers <= 0)
            throw new TunerConfigException($"adapter config field 'encoder_num_layers': must be a positive integer, got {EncoderNumLayers}.");
        if (EncoderDropout < 0 || EncoderDropout >= 1)
            throw new TunerConfigException($"adapter config field 'encoder_dropout': must be in [0, 1), got {EncoderDropout}.");
    }

    /// <summary>"MLP" (three linear layers; recommended) or "LSTM" (bidirectional LSTM and a two-layer MLP).</summary>
    public string EncoderReparameterizationType { get; }

    /// <summary>The hidden size of the prompt encoder (default: token_dim).</summary>
    public int EncoderHiddenSize { get; }

    /// <summary>The LSTM's number of layers (the MLP always has three linear layers, as in PEFT).</summary>
    public int EncoderNumLayers { get; }

    /// <summary>The LSTM's dropout.</summary>
    public double EncoderDropout { get; }

    internal override PromptKind Kind => PromptKind.InputEmbeddings;

    internal override long[] SavedShape => [EncoderTokens, TokenDim];

    internal override VirtualTokenEncoder CreateEncoder(bool direct) =>
        direct ? VirtualTokenEncoder.Embedding(EncoderTokens, TokenDim)
        : EncoderReparameterizationType == "LSTM"
            ? VirtualTokenEncoder.PTuningLstm(EncoderTokens, TokenDim, EncoderHiddenSize, EncoderNumLayers, EncoderDropout)
            : VirtualTokenEncoder.PTuningMlp(EncoderTokens, TokenDim, EncoderHiddenSize);

    /// <inheritdoc />
    protected override void WriteMethodFields(JsonObject json)
    {
        json["encoder_reparameterization_type"] = EncoderReparameterizationType;
        json["encoder_hidden_size"] = EncoderHiddenSize;
        json["encoder_num_layers"] = EncoderNumLayers;
        json["encoder_dropout"] = EncoderDropout;
    }
}
