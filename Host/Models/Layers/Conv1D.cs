using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftHost.Models.Layers;

/// <summary>
/// transformers' GPT-2 <c>Conv1D</c>: a linear layer whose weight is stored in x out
/// (y = x·W + b), so checkpoints load without a transpose.
/// </summary>
public sealed class Conv1D : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;
    private readonly Parameter bias;

    /// <summary>A layer mapping <paramref name="inFeatures"/> to <paramref name="outFeatures"/> (weight [in, out], normal(0, 0.02) as transformers initialises it).</summary>
    public Conv1D(long inFeatures, long outFeatures, Device? device = null, ScalarType? dtype = null) : base(nameof(Conv1D))
    {
        weight = new Parameter(torch.empty(inFeatures, outFeatures, dtype: dtype, device: device));
        bias = new Parameter(torch.zeros(outFeatures, dtype: dtype, device: device));
        using (no_grad()) nn.init.normal_(weight, 0, 0.02);
        register_parameter("weight", weight);
        register_parameter("bias", bias);
    }

    /// <summary>The weight, [in, out].</summary>
    public Parameter Weight => weight;

    /// <summary>The bias, [out].</summary>
    public Parameter Bias => bias;

    /// <inheritdoc />
    public override Tensor forward(Tensor input) => torch.addmm(bias, input.reshape(-1, input.shape[^1]), weight, 1, 1).view([.. input.shape[..^1], weight.shape[1]]);
}
