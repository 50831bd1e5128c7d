using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftHost.Abstractions.Layers;

/// <summary>
/// transformers' <c>Conv1D</c> (GPT-2): a linear layer whose weight is stored in x out, so
/// y = x · W + b. It lives in the contract because tuners target it (PEFT's <c>fan_in_fan_out</c>)
/// and plugins can only see types from here.
/// </summary>
public sealed class Conv1D : nn.Module<Tensor, Tensor>
{
    /// <summary>The weight, [in_features, out_features].</summary>
    public Parameter weight;

    /// <summary>The bias, [out_features].</summary>
    public Parameter bias;

    /// <summary>A layer with transformers' initialisation (normal, std 0.02; zero bias).</summary>
    public Conv1D(long inFeatures, long outFeatures, Device? device = null, ScalarType? dtype = null) : base(nameof(Conv1D))
    {
        weight = new Parameter(torch.empty(inFeatures, outFeatures, dtype: dtype, device: device));
        bias = new Parameter(torch.zeros(outFeatures, dtype: dtype, device: device));
        using (no_grad()) nn.init.normal_(weight, std: 0.02);
        RegisterComponents();
    }

    /// <summary>The input size.</summary>
    public long InFeatures => weight.shape[0];

    /// <summary>The output size.</summary>
    public long OutFeatures => weight.shape[1];

    /// <inheritdoc />
    public override Tensor forward(Tensor input) => torch.addmm(bias, input.reshape(-1, InFeatures), weight, beta: 1, alpha: 1).reshape([.. input.shape[..^1], OutFeatures]);
}
