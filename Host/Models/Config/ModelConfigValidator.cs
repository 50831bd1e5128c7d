namespace PeftHost.Models.Config;

/// <summary>
/// The ranges a config must respect before a model is built from it: sizes positive, heads dividing what
/// they split, probabilities in [0, 1), epsilons and bases positive and finite. A config that breaks one
/// would otherwise reach libtorch (a native error) or build a model that computes NaN.
/// </summary>
public static class ModelConfigValidator
{
    /// <summary>Checks <paramref name="config"/>; <paramref name="source"/> names it in the error.</summary>
    /// <exception cref="InvalidDataException">A field is out of range: the message names the field, its value and what is expected.</exception>
    public static void Validate(ModelConfig config, string source = "config.json")
    {
        ArgumentNullException.ThrowIfNull(config);
        var problems = new List<string>();
        void Positive(string field, double value)
        {
            if (!(value > 0) || !double.IsFinite(value)) problems.Add($"field '{field}' is {value}; expected a positive number");
        }
        void AtLeastOne(string field, long value)
        {
            if (value < 1) problems.Add($"field '{field}' is {value}; expected at least 1");
        }
        void Probability(string field, double value)
        {
            if (!(value >= 0 && value < 1)) problems.Add($"field '{field}' is {value}; expected a probability in [0, 1)");
        }
        void Divides(string field, long divisor, string ofField, long value)
        {
            if (divisor >= 1 && value % divisor != 0) problems.Add($"field '{field}' ({divisor}) does not divide '{ofField}' ({value})");
        }

        AtLeastOne("vocab_size", config.VocabSize);
        AtLeastOne(config is Gpt2Config ? "n_embd" : "hidden_size", config.HiddenSize);
        AtLeastOne(config is Gpt2Config ? "n_layer" : "num_hidden_layers", config.NumLayers);
        AtLeastOne(config is Gpt2Config ? "n_head" : "num_attention_heads", config.NumHeads);
        AtLeastOne(config is Gpt2Config ? "n_positions" : "max_position_embeddings", config.MaxPositions);
        switch (config)
        {
            case LlamaConfig l:
                AtLeastOne("intermediate_size", l.IntermediateSize);
                AtLeastOne("num_key_value_heads", l.NumKeyValueHeads);
                Divides("num_key_value_heads", l.NumKeyValueHeads, "num_attention_heads", l.NumHeads);
                if (l.HeadDim < 2 || l.HeadDim % 2 != 0) problems.Add($"field 'head_dim' is {l.HeadDim}; expected an even number (RoPE rotates pairs)");
                Positive("rms_norm_eps", l.RmsNormEps);
                Positive("rope_theta", l.RopeTheta);
                Probability("attention_dropout", l.AttentionDropout);
                if (l.SlidingWindow is int w) AtLeastOne("sliding_window", w);
                if (l.RopeScaling is RopeScaling r)
                {
                    Positive("rope_scaling.factor", r.Factor);
                    if (r.Type == "llama3")
                    {
                        Positive("rope_scaling.low_freq_factor", r.LowFreqFactor);
                        Positive("rope_scaling.high_freq_factor", r.HighFreqFactor);
                        if (!(r.HighFreqFactor > r.LowFreqFactor))
                            problems.Add($"field 'rope_scaling.high_freq_factor' ({r.HighFreqFactor}) must exceed 'rope_scaling.low_freq_factor' ({r.LowFreqFactor})");
                        AtLeastOne("rope_scaling.original_max_position_embeddings", r.OriginalMaxPositions);
                    }
                }
                break;
            case BertConfig b:
                Divides("num_attention_heads", b.NumHeads, "hidden_size", b.HiddenSize);
                AtLeastOne("intermediate_size", b.IntermediateSize);
                AtLeastOne("type_vocab_size", b.TypeVocabSize);
                AtLeastOne("num_labels", b.NumLabels);
                if (b.PadTokenId < 0 || b.PadTokenId >= b.VocabSize) problems.Add($"field 'pad_token_id' is {b.PadTokenId}; expected an id in [0, {b.VocabSize})");
                Positive("layer_norm_eps", b.LayerNormEps);
                Probability("hidden_dropout_prob", b.HiddenDropout);
                Probability("attention_probs_dropout_prob", b.AttentionDropout);
                if (b.ClassifierDropout is double cd) Probability("classifier_dropout", cd);
                break;
            case Gpt2Config g:
                Divides("n_head", g.NumHeads, "n_embd", g.HiddenSize);
                AtLeastOne("n_inner", g.InnerSize);
                Positive("layer_norm_epsilon", g.LayerNormEps);
                Probability("embd_pdrop", g.EmbdDropout);
                Probability("attn_pdrop", g.AttnDropout);
                Probability("resid_pdrop", g.ResidDropout);
                break;
        }
        if (problems.Count > 0) throw new InvalidDataException($"{source}: {string.Join("; ", problems)}.");
    }
}
