namespace PeftHost.Models.Config;

/// <summary>GPT-2 (<c>GPT2LMHeadModel</c>).</summary>
public sealed record Gpt2Config : ModelConfig
{
    /// <summary>MLP inner size (<c>n_inner</c>, default 4 x hidden).</summary>
    public required int InnerSize { get; init; }

    /// <summary>LayerNorm epsilon.</summary>
    public double LayerNormEps { get; init; } = 1e-5;

    /// <summary>Activation ("gelu_new", "gelu", "relu").</summary>
    public string Activation { get; init; } = "gelu_new";

    /// <summary>Dropout on embeddings.</summary>
    public double EmbdDropout { get; init; } = 0.1;

    /// <summary>Dropout on attention probabilities.</summary>
    public double AttnDropout { get; init; } = 0.1;

    /// <summary>Dropout on residual branches.</summary>
    public double ResidDropout { get; init; } = 0.1;

    /// <summary>Divide scores by sqrt(head_dim).</summary>
    public bool ScaleAttnWeights { get; init; } = true;

    /// <summary>Also divide scores by (layer index + 1).</summary>
    public bool ScaleAttnByInverseLayerIdx { get; init; }
}
