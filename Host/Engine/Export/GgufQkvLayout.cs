namespace PeftHost.Engine.Export;

/// <summary>How a Llama GGUF (and a GGUF-LoRA made for it) holds each layer's Q, K and V projections.</summary>
public enum GgufQkvLayout
{
    /// <summary>
    /// <c>attn_q</c>, <c>attn_k</c> and <c>attn_v</c>, as convert_hf_to_gguf.py writes architecture llama: what every
    /// llama.cpp-based runtime reads (the layout of <c>pefthost export</c>).
    /// </summary>
    Separate,

    /// <summary>
    /// One <c>attn_qkv</c> whose rows are Q's, K's and V's in that order (Q and K permuted as in <see cref="Separate"/>),
    /// which the llama.cpp LLamaSharp ships reads for architecture llama too. It computes one product per layer instead
    /// of three, and a LoRA adapter on Q, K and V becomes one pair (the three A stacked, the three B block-diagonal) where
    /// it was three (a third of the graph nodes; the B's zero blocks cost multiply-adds instead). The llama backend's
    /// own cache uses it; files for other runtimes do not.
    /// </summary>
    Fused,
}
