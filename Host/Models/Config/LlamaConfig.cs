namespace PeftHost.Models.Config;

/// <summary>Llama, Mistral and Qwen2 (one decoder; the differences are config fields).</summary>
public sealed record LlamaConfig : ModelConfig
{
    /// <summary>SwiGLU inner size.</summary>
    public required int IntermediateSize { get; init; }

    /// <summary>Key/value heads (grouped-query attention when fewer than the query heads).</summary>
    public required int NumKeyValueHeads { get; init; }

    /// <summary>Per-head size (<c>head_dim</c>, or hidden / heads).</summary>
    public required int HeadDim { get; init; }

    /// <summary>RMSNorm epsilon.</summary>
    public double RmsNormEps { get; init; } = 1e-6;

    /// <summary>RoPE base.</summary>
    public double RopeTheta { get; init; } = 10000;

    /// <summary>RoPE scaling, or null.</summary>
    public RopeScaling? RopeScaling { get; init; }

    /// <summary>Bias on q/k/v/o (llama's attention_bias).</summary>
    public bool AttentionBias { get; init; }

    /// <summary>Bias on q/k/v only (Qwen2).</summary>
    public bool QkvBias { get; init; }

    /// <summary>Bias on the MLP projections.</summary>
    public bool MlpBias { get; init; }

    /// <summary>Attention dropout probability (training only).</summary>
    public double AttentionDropout { get; init; }

    /// <summary>Mistral's sliding window: a token attends to itself and the window - 1 before it; null = unlimited.</summary>
    public int? SlidingWindow { get; init; }
}
