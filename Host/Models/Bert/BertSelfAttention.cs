using PeftHost.Models.Config;
using PeftHost.Models.Layers;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Models.Bert;

/// <summary>Bidirectional multi-head attention (<c>attention.self</c>: query, key, value).</summary>
public sealed class BertSelfAttention : nn.Module
{
    private nn.Module<Tensor, Tensor> query;
    private nn.Module<Tensor, Tensor> key;
    private nn.Module<Tensor, Tensor> value;
    private readonly int _heads, _headDim;
    private readonly double _dropout;

    /// <summary>Attention per config.</summary>
    public BertSelfAttention(BertConfig c) : base(nameof(BertSelfAttention))
    {
        _heads = c.NumHeads;
        _headDim = c.HiddenSize / c.NumHeads;
        _dropout = c.AttentionDropout;
        query = nn.Linear(c.HiddenSize, c.HiddenSize);
        key = nn.Linear(c.HiddenSize, c.HiddenSize);
        value = nn.Linear(c.HiddenSize, c.HiddenSize);
        register_module("query", query);
        register_module("key", key);
        register_module("value", value);
    }

    /// <summary>hidden [b, s, hidden], additive mask [b, 1, 1, s] or null → context [b, s, hidden].</summary>
    public Tensor Forward(Tensor hidden, Tensor? mask)
    {
        using var scope = NewDisposeScope();
        long b = hidden.shape[0], s = hidden.shape[1];
        Tensor Split(nn.Module<Tensor, Tensor> proj) => proj.forward(hidden).view(b, s, _heads, _headDim).transpose(1, 2);
        Tensor context = Attention.Compute(Split(query), Split(key), Split(value), mask, causal: false, _dropout, training);
        return scope.MoveToOuter(context.transpose(1, 2).reshape(b, s, _heads * _headDim));
    }
}
