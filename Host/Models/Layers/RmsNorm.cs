using PeftHost.Abstractions.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftHost.Models.Layers;

/// <summary>
/// RMSNorm as transformers' <c>LlamaRMSNorm</c>: normalise in float32, cast back, then scale. Copyable
/// (<see cref="ICopyableModule"/>), so that tuners can train a copy of it (LN tuning, <c>modules_to_save</c>).
/// </summary>
public sealed class RmsNorm : nn.Module<Tensor, Tensor>, ICopyableModule
{
    private readonly Parameter weight;
    private readonly double _eps;

    /// <summary>A norm over the last dimension of size <paramref name="size"/>.</summary>
    public RmsNorm(long size, double eps) : base(nameof(RmsNorm))
    {
        weight = new Parameter(torch.ones(size));
        _eps = eps;
        register_parameter("weight", weight);
    }

    // The copy's own weight (same values, dtype and device), frozen until the caller says otherwise.
    private RmsNorm(Parameter weight, double eps) : base(nameof(RmsNorm))
    {
        this.weight = weight;
        _eps = eps;
        register_parameter("weight", weight);
    }

    /// <inheritdoc />
    public nn.Module<Tensor, Tensor> Copy()
    {
        using (no_grad()) return new RmsNorm(new Parameter(weight.detach().clone(), requires_grad: false), _eps);
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
