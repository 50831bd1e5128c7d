using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Models.Layers;

/// <summary>
/// Gradient checkpointing of a stack of layers: the forward runs them without autograd, keeping only
/// each layer's input (and the random state it started from); the stack's output becomes a leaf that
/// the rest of the model (norm, head, loss) builds its graph on. After <c>loss.backward()</c>,
/// <see cref="Backward"/> takes the gradient that reached that leaf and walks the layers back: each is
/// run again with autograd under its saved random state (dropout draws the same masks) and
/// back-propagated, which accumulates its trainable parameters' gradients and gives the gradient of
/// its input. Only one layer's activations are alive at a time.
/// </summary>
public sealed class CheckpointedLayers : IDisposable
{
    /// <summary>One layer's forward from its input and the tensors it also reads (none trained).</summary>
    public delegate Tensor LayerForward(int layer, Tensor hidden, Tensor cos, Tensor sin, Tensor? mask);

    private readonly LayerForward _forward;
    private readonly List<(Tensor Input, byte[] Rng)> _inputs = [];
    private readonly Tensor _cos, _sin;
    private readonly Tensor? _mask;
    private readonly Tensor _stackInput;
    private Tensor? _output;

    private CheckpointedLayers(LayerForward forward, Tensor stackInput, Tensor cos, Tensor sin, Tensor? mask)
    {
        _forward = forward;
        // The stack's input keeps its graph (prompt learning's virtual tokens, trainable embeddings).
        _stackInput = stackInput.alias().DetachFromDisposeScope();
        _cos = cos.detach().DetachFromDisposeScope();
        _sin = sin.detach().DetachFromDisposeScope();
        _mask = mask?.detach().DetachFromDisposeScope();
    }

    /// <summary>Runs <paramref name="layers"/> layers without keeping activations; returns the leaf the rest of the model continues from.</summary>
    public static (CheckpointedLayers Pending, Tensor Output) Run(int layers, LayerForward forward, Tensor hidden, Tensor cos, Tensor sin, Tensor? mask)
    {
        var pending = new CheckpointedLayers(forward, hidden, cos, sin, mask);
        Tensor h = hidden.detach();
        using (no_grad())
        {
            for (int i = 0; i < layers; i++)
            {
                using (Tensor state = get_rng_state()) pending._inputs.Add((h.detach().DetachFromDisposeScope(), state.data<byte>().ToArray()));
                h = forward(i, h, pending._cos, pending._sin, pending._mask);
            }
        }
        pending._output = h.detach().requires_grad_(true).DetachFromDisposeScope();
        return (pending, pending._output.alias());
    }

    /// <summary>Back-propagates the gradient that reached the stack's output through the layers (call once, after loss.backward()).</summary>
    public void Backward()
    {
        Tensor? grad = _output?.grad;
        if (grad is null) return; // nothing downstream required a gradient
        Tensor g = grad.detach().clone();
        using (enable_grad())
        {
            for (int i = _inputs.Count - 1; i >= 0; i--)
            {
                using var scope = NewDisposeScope();
                Tensor x = _inputs[i].Input.detach().requires_grad_(true);
                Tensor current = get_rng_state();
                set_rng_state(tensor(_inputs[i].Rng, dtype: ScalarType.Byte));
                Tensor y;
                try { y = _forward(i, x, _cos, _sin, _mask); }
                finally { set_rng_state(current); }
                y.backward([g]);
                Tensor next = x.grad!.detach().clone();
                g.Dispose();
                g = next.DetachFromDisposeScope();
            }
            if (_stackInput.requires_grad) _stackInput.backward([g]);
        }
        g.Dispose();
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach ((Tensor input, _) in _inputs) input.Dispose();
        _inputs.Clear();
        _cos.Dispose();
        _sin.Dispose();
        _mask?.Dispose();
        _stackInput.Dispose();
        _output?.Dispose();
    }
}
