namespace PeftHost.Llama;

/// <summary>How a <see cref="LlamaCppContext"/> is made.</summary>
public sealed record LlamaCppContextOptions
{
    /// <summary>KV cache positions (prompt plus generated tokens).</summary>
    public int ContextSize { get; init; } = 512;

    /// <summary>Tokens per decode call during prefill (llama.cpp's n_batch = n_ubatch).</summary>
    public int BatchSize { get; init; } = 512;

    /// <summary>CPU threads (default: every core).</summary>
    public int? Threads { get; init; }

    /// <summary>
    /// Float32 KV cache and no flash attention (whose CPU kernel accumulates in half precision): the
    /// attention then computes in float32, as TorchSharp does. Null = on exactly when the weights are float32.
    /// </summary>
    public bool? ExactAttention { get; init; }
}
