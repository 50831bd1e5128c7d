using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftHost.Plugins.Lora.Variants;

/// <summary>
/// DoRA's magnitude vector of one adapter, a module with one parameter <c>weight</c>, so that it is
/// named <c>lora_magnitude_vector.&lt;adapter&gt;.weight</c> as in PEFT 0.13 (whose
/// <c>DoraLinearLayer</c> holds it the same way). One entry per output feature of the base layer.
/// </summary>
public sealed class DoraMagnitude : nn.Module
{
    /// <summary>The magnitude, one entry per output feature (per embedding dimension for an Embedding).</summary>
    public Parameter weight;

    /// <summary>A magnitude initialised to <paramref name="initial"/> (copied): the norm of W + ΔW, as PEFT's <c>dora_init</c>.</summary>
    public DoraMagnitude(Tensor initial) : base(nameof(DoraMagnitude))
    {
        weight = new Parameter(initial.detach().clone(), requires_grad: true);
        RegisterComponents();
    }
}
