using PeftHost.Models.Config;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Models.Bert;

/// <summary><c>attention</c>: <c>self</c> then <c>output</c>.</summary>
public sealed class BertAttention : nn.Module
{
    private readonly BertSelfAttention self;
    private readonly BertDenseOutput output;

    /// <summary>Attention block per config.</summary>
    public BertAttention(BertConfig c) : base(nameof(BertAttention))
    {
        self = new BertSelfAttention(c);
        output = new BertDenseOutput(c.HiddenSize, c.HiddenSize, c.LayerNormEps, c.HiddenDropout);
        register_module("self", self);
        register_module("output", output);
    }

    /// <summary>[b, s, hidden] → [b, s, hidden].</summary>
    public Tensor Forward(Tensor hidden, Tensor? mask)
    {
        using var scope = NewDisposeScope();
        return scope.MoveToOuter(output.Forward(self.Forward(hidden, mask), hidden));
    }
}
