using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Models.Layers;

/// <summary>softmax(q·kᵀ·scale + mask)·v with libtorch's fused kernel where it applies.</summary>
public static class Attention
{
    /// <summary>
    /// q [b, h, s, d], k and v [b, h, t, d]. <paramref name="scale"/> null means 1/sqrt(d), which
    /// runs through <c>scaled_dot_product_attention</c>; another scale runs the eager formula.
    /// Probabilities are computed in float32 as transformers' eager attention does.
    /// </summary>
    public static Tensor Compute(Tensor q, Tensor k, Tensor v, Tensor? mask, bool causal, double dropout, bool training, double? scale = null)
    {
        double p = training ? dropout : 0.0;
        if (scale is null)
            return nn.functional.scaled_dot_product_attention(q, k, v, mask, p, causal && mask is null);

        using var scope = NewDisposeScope();
        Tensor scores = torch.matmul(q, k.transpose(-1, -2)).mul_(scale.Value);
        if (mask is not null) scores = scores.add_(mask);
        else if (causal)
        {
            long s = q.shape[2], t = k.shape[2];
            scores = scores.add_(AttentionMasks.Build(s, t, t - s, causal: true, null, null, scores.dtype, scores.device));
        }
        Tensor probs = scores.softmax(-1, ScalarType.Float32).to(q.dtype);
        if (p > 0) probs = nn.functional.dropout(probs, p, training);
        return scope.MoveToOuter(torch.matmul(probs, v));
    }
}
