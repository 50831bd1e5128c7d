namespace PeftHost.Models;

/// <summary>
/// A model that can recompute its layers in the backward pass instead of keeping their activations
/// (transformers' <c>gradient_checkpointing_enable()</c>): less memory for one more forward per layer.
/// </summary>
public interface IGradientCheckpointing
{
    /// <summary>When true (and the model is training with autograd on), each decoder layer's activations are recomputed in backward.</summary>
    bool GradientCheckpointing { get; set; }
}
