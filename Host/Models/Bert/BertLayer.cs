using PeftHost.Models.Config;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Models.Bert;

/// <summary>One encoder layer (<c>encoder.layer.N</c>).</summary>
public sealed class BertLayer : nn.Module
{
    private readonly BertAttention attention;
    private readonly BertIntermediate intermediate;
    private readonly BertDenseOutput output;

    /// <summary>Layer per config.</summary>
    public BertLayer(BertConfig c) : base(nameof(BertLayer))
    {
        attention = new BertAttention(c);
        intermediate = new BertIntermediate(c);
        output = new BertDenseOutput(c.IntermediateSize, c.HiddenSize, c.LayerNormEps, c.HiddenDropout);
        register_module("attention", attention);
        register_module("intermediate", intermediate);
        register_module("output", output);
    }

    /// <summary>[b, s, hidden] → [b, s, hidden].</summary>
    public Tensor Forward(Tensor hidden, Tensor? mask)
    {
        using var scope = NewDisposeScope();
        Tensor a = attention.Forward(hidden, mask);
        return scope.MoveToOuter(output.Forward(intermediate.forward(a), a));
    }
}
