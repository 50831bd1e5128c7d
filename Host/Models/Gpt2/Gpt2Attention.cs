using PeftHost.Abstractions.Layers;
using PeftHost.Models.Config;
using PeftHost.Models.Layers;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Models.Gpt2;

/// <summary>Causal attention with fused q/k/v (<c>attn.c_attn</c>, <c>attn.c_proj</c>, both Conv1D).</summary>
public sealed class Gpt2Attention : nn.Module
{
    private nn.Module<Tensor, Tensor> c_attn;
    private nn.Module<Tensor, Tensor> c_proj;
    private readonly int _heads, _headDim, _layer, _hidden;
    private readonly double _attnDropout, _residDropout;
    private readonly double? _scale;

    /// <summary>Attention of layer <paramref name="layer"/>.</summary>
    public Gpt2Attention(Gpt2Config c, int layer) : base(nameof(Gpt2Attention))
    {
        _hidden = c.HiddenSize;
        _heads = c.NumHeads;
        _headDim = c.HiddenSize / c.NumHeads;
        _layer = layer;
        _attnDropout = c.AttnDropout;
        _residDropout = c.ResidDropout;
        double scale = c.ScaleAttnWeights ? 1.0 / Math.Sqrt(_headDim) : 1.0;
        if (c.ScaleAttnByInverseLayerIdx) scale /= layer + 1;
        // null selects the fused kernel, whose built-in scale is 1/sqrt(head_dim).
        _scale = c.ScaleAttnWeights && !c.ScaleAttnByInverseLayerIdx ? null : scale;
        c_attn = new Conv1D(c.HiddenSize, 3 * c.HiddenSize);
        c_proj = new Conv1D(c.HiddenSize, c.HiddenSize);
        register_module("c_attn", c_attn);
        register_module("c_proj", c_proj);
    }

    /// <summary>hidden [b, s, hidden] → [b, s, hidden].</summary>
    public Tensor Forward(Tensor hidden, Tensor? mask, KvCache? cache, long start)
    {
        using var scope = NewDisposeScope();
        long b = hidden.shape[0], s = hidden.shape[1];
        Tensor[] qkv = c_attn.forward(hidden).split(_hidden, 2);
        Tensor Heads(Tensor t) => t.view(b, s, _heads, _headDim).transpose(1, 2);
        Tensor q = Heads(qkv[0]), k = Heads(qkv[1]), v = Heads(qkv[2]);
        if (cache is not null) (k, v) = cache.Append(_layer, start, k, v);
        Tensor output = Attention.Compute(q, k, v, mask, causal: mask is null && s > 1, _attnDropout, training, _scale);
        output = output.transpose(1, 2).reshape(b, s, _hidden);
        return scope.MoveToOuter(nn.functional.dropout(c_proj.forward(output), _residDropout, training));
    }
}
