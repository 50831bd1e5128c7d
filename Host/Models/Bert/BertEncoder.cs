using PeftHost.Models.Config;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftHost.Models.Bert;

/// <summary><c>encoder</c>: the layer stack (<c>encoder.layer.N</c>).</summary>
public sealed class BertEncoder : nn.Module
{
    private readonly ModuleList<BertLayer> layer = new();

    /// <summary>The stack per config.</summary>
    public BertEncoder(BertConfig c) : base(nameof(BertEncoder))
    {
        for (int i = 0; i < c.NumLayers; i++) layer.Add(new BertLayer(c));
        register_module("layer", layer);
    }

    /// <summary>[b, s, hidden] → [b, s, hidden].</summary>
    public Tensor Forward(Tensor hidden, Tensor? mask)
    {
        using var scope = NewDisposeScope();
        foreach (BertLayer l in layer) hidden = l.Forward(hidden, mask);
        return scope.MoveToOuter(hidden);
    }
}
