using PeftHost.Models.Config;
using PeftHost.Models.Layers;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Models.Bert;

/// <summary><c>intermediate</c>: act(dense(x)).</summary>
public sealed class BertIntermediate : nn.Module<Tensor, Tensor>
{
    private nn.Module<Tensor, Tensor> dense;
    private readonly Func<Tensor, Tensor> _act;

    /// <summary>Intermediate layer per config.</summary>
    public BertIntermediate(BertConfig c) : base(nameof(BertIntermediate))
    {
        dense = nn.Linear(c.HiddenSize, c.IntermediateSize);
        _act = Activations.Get(c.HiddenAct);
        register_module("dense", dense);
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        return scope.MoveToOuter(_act(dense.forward(x)));
    }
}
