using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Models.Layers;

/// <summary>
/// Gradient checkpointing of one layer (torch.utils.checkpoint's reentrant form): the forward runs
/// without autograd and keeps only its inputs; the backward runs the layer again with autograd, under
/// the random state the forward had (so dropout draws the same masks), and back-propagates through
/// it, which also accumulates the gradients of the layer's trainable parameters.
/// </summary>
public sealed class LayerCheckpoint : autograd.SingleTensorFunction<LayerCheckpoint>
{
    /// <summary>The layer's forward from its input and the tensors it also reads (none of which is trained; null entries stay null).</summary>
    public delegate Tensor LayerForward(Tensor hidden, Tensor?[] constants);

    /// <inheritdoc />
    public override string Name => nameof(LayerCheckpoint);

    /// <summary>
    /// <paramref name="layer"/>(<paramref name="hidden"/>) with its activations recomputed in backward.
    /// <paramref name="constants"/> are the other tensors the layer reads (kept alive until backward).
    /// </summary>
    public static Tensor Run(LayerForward layer, Tensor hidden, params Tensor?[] constants)
    {
        // Without an input that requires grad the output would not either, and the layer's trainable
        // parameters would get no gradient (PEFT's enable_input_require_grads covers the same case).
        Tensor input = hidden.requires_grad ? hidden : hidden.detach().requires_grad_(true);
        return apply(input, layer, constants);
    }

    /// <inheritdoc />
    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var hidden = (Tensor)vars[0];
        var layer = (LayerForward)vars[1];
        var constants = (Tensor?[])vars[2];
        using (Tensor state = torch.get_rng_state()) ctx.save_data("rng", state.data<byte>().ToArray());
        ctx.save_data("layer", layer);
        ctx.save_for_backward([hidden, .. constants.Where(c => c is not null).Select(c => c!)]);
        ctx.save_data("constants", constants.Select(c => c is not null).ToArray());
        using (no_grad()) return layer(hidden, constants);
    }

    /// <inheritdoc />
    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradOutput)
    {
        List<Tensor> saved = ctx.get_saved_variables();
        var layer = (LayerForward)ctx.get_data("layer");
        var rng = (byte[])ctx.get_data("rng");
        var present = (bool[])ctx.get_data("constants");
        var constants = new Tensor?[present.Length];
        for (int i = 0, next = 1; i < present.Length; i++) constants[i] = present[i] ? saved[next++] : null;
        using Tensor x = saved[0].detach().requires_grad_(true);
        using (enable_grad())
        using (var scope = NewDisposeScope())
        {
            Tensor current = torch.get_rng_state();
            torch.set_rng_state(torch.tensor(rng, dtype: ScalarType.Byte));
            Tensor output;
            try { output = layer(x, constants); }
            finally { torch.set_rng_state(current); }
            output.backward([gradOutput]);
        }
        Tensor grad = x.grad is { } g ? g.detach().clone() : zeros_like(x);
        foreach (Tensor t in saved) t.Dispose();
        return [grad];
    }
}
