using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Plugins.Lora.Variants;

/// <summary>
/// DoRA on an embedding (PEFT's <c>DoraEmbeddingVariant</c> and <c>DoraEmbeddingLayer</c>):
/// y = s·base(x) + s·embedding(x, Aᵀ)·Bᵀ·scaling, s = m / ‖W + ΔW‖ per embedding dimension, detached.
/// </summary>
public sealed class DoraEmbeddingVariant : DoraVariant
{
    /// <summary>The one instance: the variant holds no state of its own.</summary>
    public static DoraEmbeddingVariant Instance { get; } = new();

    private DoraEmbeddingVariant() { }

    /// <inheritdoc />
    public override Tensor Forward(LoraLayer layer, string adapter, Tensor x, Tensor result)
    {
        var embedding = (LoraEmbedding)layer;
        using var scope = NewDisposeScope();
        (var a, var b) = embedding.Factors(adapter);
        Tensor aT = a.t(), bT = b.t();
        double scaling = layer.Scaling(adapter);
        Tensor lora = LoraEmbedding.Embed(x, aT).matmul(bT) * scaling;
        Tensor norm;
        using (no_grad())
        {
            Tensor delta = aT.matmul(bT).mul_(scaling);
            using Tensor weight = layer.BaseWeight.Read();
            norm = layer.WeightNorm(weight, delta).detach();
        }
        Tensor scale = layer.Magnitude(adapter) / norm;
        return scope.MoveToOuter(scale * result + scale * lora);
    }
}
