using PeftHost.Models.Config;
using PeftHost.Models.Layers;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Models.Llama;

/// <summary>Grouped-query attention with RoPE (transformers' <c>LlamaAttention</c>; Mistral and Qwen2 by config).</summary>
public sealed class LlamaAttention : nn.Module
{
    private nn.Module<Tensor, Tensor> q_proj;
    private nn.Module<Tensor, Tensor> k_proj;
    private nn.Module<Tensor, Tensor> v_proj;
    private nn.Module<Tensor, Tensor> o_proj;
    private readonly int _heads, _kvHeads, _headDim, _layer;
    private readonly double _dropout;

    /// <summary>Attention of layer <paramref name="layer"/>.</summary>
    public LlamaAttention(LlamaConfig c, int layer) : base(nameof(LlamaAttention))
    {
        _heads = c.NumHeads;
        _kvHeads = c.NumKeyValueHeads;
        _headDim = c.HeadDim;
        _layer = layer;
        _dropout = c.AttentionDropout;
        bool qkvBias = c.AttentionBias || c.QkvBias;
        q_proj = nn.Linear(c.HiddenSize, _heads * _headDim, hasBias: qkvBias);
        k_proj = nn.Linear(c.HiddenSize, _kvHeads * _headDim, hasBias: qkvBias);
        v_proj = nn.Linear(c.HiddenSize, _kvHeads * _headDim, hasBias: qkvBias);
        o_proj = nn.Linear(_heads * _headDim, c.HiddenSize, hasBias: c.AttentionBias);
        register_module("q_proj", q_proj);
        register_module("k_proj", k_proj);
        register_module("v_proj", v_proj);
        register_module("o_proj", o_proj);
    }

    /// <summary>hidden [b, s, hidden] → [b, s, hidden].</summary>
    public Tensor Forward(Tensor hidden, Tensor cos, Tensor sin, Tensor? mask, KvCache? cache, long start)
    {
        using var scope = NewDisposeScope();
        long b = hidden.shape[0], s = hidden.shape[1];
        Tensor q = q_proj.forward(hidden).view(b, s, _heads, _headDim).transpose(1, 2);
        Tensor k = k_proj.forward(hidden).view(b, s, _kvHeads, _headDim).transpose(1, 2);
        Tensor v = v_proj.forward(hidden).view(b, s, _kvHeads, _headDim).transpose(1, 2);
        q = RotaryEmbedding.Apply(q, cos, sin);
        k = RotaryEmbedding.Apply(k, cos, sin);
        if (cache is not null) (k, v) = cache.Append(_layer, start, k, v);

        int groups = _heads / _kvHeads;
        Tensor output;
        if (s == 1 && groups > 1 && (mask is null || mask.shape[2] == 1))
        {
            // One query per sequence sees the cached keys: the groups of query heads that share a
            // KV head become rows of one query matrix, so keys and values are never repeated (a
            // one-query mask [b, 1, 1, keys], as rows at different positions need, broadcasts over them).
            Tensor grouped = q.reshape(b, _kvHeads, groups, _headDim);
            output = Attention.Compute(grouped, k, v, mask, causal: false, _dropout, training).reshape(b, _heads, 1, _headDim);
        }
        else
        {
            if (groups > 1)
            {
                k = k.repeat_interleave(groups, 1);
                v = v.repeat_interleave(groups, 1);
            }
            // Without an explicit mask the prompt runs from position 0: plain causal attention.
            output = Attention.Compute(q, k, v, mask, causal: mask is null && s > 1, _dropout, training);
        }
        output = output.transpose(1, 2).reshape(b, s, _heads * _headDim);
        return scope.MoveToOuter(o_proj.forward(output));
    }
}
