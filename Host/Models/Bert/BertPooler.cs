using PeftHost.Models.Config;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Models.Bert;

/// <summary><c>pooler</c>: tanh(dense(hidden of the first token)).</summary>
public sealed class BertPooler : nn.Module<Tensor, Tensor>
{
    private nn.Module<Tensor, Tensor> dense;

    /// <summary>Pooler per config.</summary>
    public BertPooler(BertConfig c) : base(nameof(BertPooler))
    {
        dense = nn.Linear(c.HiddenSize, c.HiddenSize);
        register_module("dense", dense);
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor hidden)
    {
        using var scope = NewDisposeScope();
        return scope.MoveToOuter(torch.tanh(dense.forward(hidden.select(1, 0))));
    }
}
