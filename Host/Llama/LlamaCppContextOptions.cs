namespace PeftHost.Llama;

/// <summary>How a <see cref="LlamaCppContext"/> is made.</summary>
public sealed record LlamaCppContextOptions
{
    /// <summary>KV cache positions (prompt plus generated tokens).</summary>
    public int ContextSize { get; init; } = 512;

    /// <summary>Tokens per decode call during prefill (llama.cpp's n_batch = n_ubatch).</summary>
    public int BatchSize { get; init; } = 512;

    /// <summary>
    /// CPU threads for every decode call. Null: prefill runs on every logical CPU, and token-by-token decoding on
    /// the thread count its first calls measure fastest (<see cref="LlamaCppContext.DecodeThreads"/>): decoding is
    /// bound by memory bandwidth, and where one thread already saturates it (this project's 2-vCPU machine: 169
    /// against 99 tokens/s for q4_0) a second one only adds a barrier per graph node, which an unmerged LoRA
    /// adapter's four extra nodes per adapted weight then multiply.
    /// </summary>
    public int? Threads { get; init; }

    /// <summary>
    /// Float32 KV cache and no flash attention (whose CPU kernel accumulates in half precision): the
    /// attention then computes in float32, as TorchSharp does. Null = on exactly when the weights are float32.
    /// </summary>
    public bool? ExactAttention { get; init; }
}
