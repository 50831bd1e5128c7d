using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftHost.Models.Layers;

/// <summary>RMSNorm as transformers' <c>LlamaRMSNorm</c>: normalise in float32, cast back, then scale.</summary>
public sealed class RmsNorm : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;
    private readonly double _eps;

    /// <summary>The scale (what the model's dtype and device are read from).</summary>
    internal Parameter Weight => weight;

    /// <summary>A norm over the last dimension of size <paramref name="size"/>.</summary>
    public RmsNorm(long size, double eps) : base(nameof(RmsNorm))
    {
        weight = new Parameter(torch.ones(size));
        _eps = eps;
        register_parameter("weight", weight);
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        Tensor x = input.dtype == ScalarType.Float32 ? input : input.to(ScalarType.Float32);
        Tensor variance = x.pow(2).mean([-1], keepdim: true);
        Tensor normed = x * torch.rsqrt(variance + _eps);
        if (input.dtype != ScalarType.Float32) normed = normed.to(input.dtype);
        // Without autograd the scale is applied in place.
        return scope.MoveToOuter(torch.is_grad_enabled() ? weight * normed : normed.mul_(weight));
    }
}
