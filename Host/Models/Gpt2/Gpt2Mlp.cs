using PeftHost.Abstractions.Layers;
using PeftHost.Models.Config;
using PeftHost.Models.Layers;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Models.Gpt2;

/// <summary><c>mlp</c>: dropout(c_proj(act(c_fc(x)))).</summary>
public sealed class Gpt2Mlp : nn.Module<Tensor, Tensor>
{
    private nn.Module<Tensor, Tensor> c_fc;
    private nn.Module<Tensor, Tensor> c_proj;
    private readonly Func<Tensor, Tensor> _act;
    private readonly double _dropout;

    /// <summary>MLP per config.</summary>
    public Gpt2Mlp(Gpt2Config c) : base(nameof(Gpt2Mlp))
    {
        c_fc = new Conv1D(c.HiddenSize, c.InnerSize);
        c_proj = new Conv1D(c.InnerSize, c.HiddenSize);
        _act = Activations.Get(c.Activation);
        _dropout = c.ResidDropout;
        register_module("c_fc", c_fc);
        register_module("c_proj", c_proj);
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        return scope.MoveToOuter(nn.functional.dropout(c_proj.forward(_act(c_fc.forward(x))), _dropout, training));
    }
}
