using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Plugins.Lora.Variants;

/// <summary>
/// DoRA on a linear layer or GPT-2's Conv1D (PEFT's <c>DoraLinearVariant</c> and <c>DoraLinearLayer</c>):
/// y = base(x) + (m/‖W + ΔW‖ − 1) · (x_d Wᵀ) + m/‖W + ΔW‖ · B(A(x_d)) · scaling, the norm detached,
/// x_d = dropout(x), so the base bias is not rescaled.
/// </summary>
public sealed class DoraLinearVariant : DoraVariant
{
    /// <summary>The one instance: the variant holds no state of its own.</summary>
    public static DoraLinearVariant Instance { get; } = new();

    private DoraLinearVariant() { }

    /// <inheritdoc />
    public override Tensor Forward(LoraLayer layer, string adapter, Tensor x, Tensor result)
    {
        var linear = (LoraLinear)layer;
        using var scope = NewDisposeScope();
        (var a, var b) = linear.Factors(adapter);
        double scaling = layer.Scaling(adapter);
        Tensor xd = layer.Dropout(adapter).forward(x);
        Tensor lora = torch.nn.functional.linear(torch.nn.functional.linear(xd, a), b);
        Tensor weight = layer.Weight.to(x.dtype);
        Tensor norm;
        using (no_grad())
        {
            // Detached, as the DoRA paper (section 4.3) and PEFT: the norm gets no gradient.
            Tensor delta = LoraLayer.Product(b, a).mul_(scaling);
            norm = layer.WeightNorm(weight, linear.FanInFanOut ? delta.t() : delta).detach();
        }
        Tensor scale = (layer.Magnitude(adapter) / norm).view(1, -1);
        Tensor baseProduct = linear.FanInFanOut ? xd.matmul(weight) : xd.matmul(weight.t());
        return scope.MoveToOuter(result + (scale - 1) * baseProduct + scale * lora * scaling);
    }
}
