using static TorchSharp.torch;

namespace PeftHost.Abstractions.Layers;

/// <summary>
/// x · Wᵀ for a <see cref="QuantizedLinear"/> as an autograd function that keeps nothing for the backward
/// pass but the layer: a plain <c>linear(x, W)</c> would make autograd hold the decoded weight (full precision,
/// 8x the 4-bit bytes) of every layer until backward. The backward pass decodes the weight again and returns
/// ∂L/∂x = ∂L/∂y · W, as bitsandbytes' <c>MatMul4Bit</c> does; the weight gets no gradient (it is frozen).
/// </summary>
/// <remarks>
/// The backward never runs autograd itself (no nested backward call), so it is safe under the models'
/// gradient checkpointing, which back-propagates through recomputed layers from its own loop.
/// </remarks>
internal sealed class DequantizingMatmul : autograd.SingleTensorFunction<DequantizingMatmul>
{
    private const string LayerKey = "layer";

    /// <inheritdoc />
    public override string Name => nameof(DequantizingMatmul);

    /// <summary>vars: the input (in the layer's compute dtype) and the layer.</summary>
    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var input = (Tensor)vars[0];
        var layer = (QuantizedLinear)vars[1];
        ctx.save_data(LayerKey, layer);
        using Tensor weight = layer.Dequantize();
        return nn.functional.linear(input, weight);
    }

    /// <summary>The input's gradient from the weight decoded again; none for the layer (not a tensor).</summary>
    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor grad_output)
    {
        var layer = (QuantizedLinear)ctx.get_data(LayerKey);
        using Tensor weight = layer.Dequantize();
        // Handed to libtorch as the result: not disposed here (the caller's dispose scope, if any, frees the wrapper).
        Tensor grad = grad_output.matmul(weight);
        return [grad, null!];
    }
}
