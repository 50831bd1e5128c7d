using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Plugins.Lora.Variants;

/// <summary>
/// DoRA on a linear layer or GPT-2's Conv1D (PEFT's <c>DoraLinearVariant</c> and <c>DoraLinearLayer</c>):
/// y = base(x) + (m/‖W + ΔW‖ − 1) · (x_d Wᵀ) + m/‖W + ΔW‖ · B(A(x_d)) · scaling, the norm detached,
/// x_d = dropout(x), so the base bias is not rescaled. On a quantized base W is the dequantized weight (PEFT's
/// <c>dequantize_module_weight</c>).
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
        Tensor norm;
        using (no_grad())
        {
            // Detached, as the DoRA paper (section 4.3) and PEFT: the norm gets no gradient.
            Tensor weight = layer.BaseWeight.Read().to(x.dtype);
            Tensor delta = LoraLayer.Product(b, a).mul_(scaling);
            norm = layer.WeightNorm(weight, linear.FanInFanOut ? delta.t() : delta).detach();
        }
        Tensor scale = (layer.Magnitude(adapter) / norm).view(1, -1);
        Tensor baseProduct = BaseProduct(linear, xd);
        return scope.MoveToOuter(result + (scale - 1) * baseProduct + scale * lora * scaling);
    }

    // x_d · Wᵀ without the bias. A quantized base multiplies through its own path, which does not keep the
    // decoded weight for the backward pass (PEFT's DoRA decodes it and multiplies, so autograd keeps it).
    private static Tensor BaseProduct(LoraLinear layer, Tensor xd)
    {
        if (layer.BaseWeight.Quantized is { } quantized) return quantized.LinearWithoutBias(xd);
        Tensor weight = layer.BaseWeight.Parameter!.to(xd.dtype);
        return layer.FanInFanOut ? xd.matmul(weight) : xd.matmul(weight.t());
    }
}
