using static TorchSharp.torch;

namespace PeftHost.Abstractions.Layers;

/// <summary>
/// An adapter's dropout on its input (PEFT's <c>nn.Dropout(p)</c>, or <c>nn.Identity()</c> when p is 0), for a
/// layer's per-adapter dropout container (<c>lora_dropout.&lt;adapter&gt;</c>; contract 1.3).
/// </summary>
/// <remarks>
/// Prefer it to TorchSharp's <c>nn.Dropout</c> and <c>nn.Identity</c>: those are made through TorchSharp 0.107's
/// <c>Module(string)</c> constructor, which keeps 64 native bytes per module that nothing frees, so an application
/// that adds and deletes adapters for hours grows by them. It computes what they compute:
/// <c>nn.functional.dropout</c> while training (the same random draws as <c>nn.Dropout</c>), and its input, as an
/// alias, when p is 0 or the module is in evaluation mode.
/// </remarks>
public sealed class AdapterDropout : nn.Module<Tensor, Tensor>
{
    /// <summary>A dropout of probability <paramref name="probability"/> (0 for none).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="probability"/> is not in [0, 1].</exception>
    public AdapterDropout(double probability) : base(NativeCustomModule.Create(nameof(AdapterDropout)), IntPtr.Zero)
    {
        if (!(probability is >= 0 and <= 1))
            throw new ArgumentOutOfRangeException(nameof(probability), probability, "A dropout probability must be in [0, 1].");
        name = nameof(AdapterDropout);
        Probability = probability;
    }

    /// <summary>The probability of zeroing an element while training.</summary>
    public double Probability { get; }

    /// <summary>True when the probability is 0: the module passes its input through (PEFT's <c>nn.Identity</c>).</summary>
    public bool IsIdentity => Probability == 0;

    /// <inheritdoc/>
    public override Tensor forward(Tensor input) =>
        IsIdentity || !training ? input.alias() : nn.functional.dropout(input, Probability, training: true);
}
