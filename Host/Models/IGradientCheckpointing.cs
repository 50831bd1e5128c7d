namespace PeftHost.Models;

/// <summary>
/// A model that can recompute its layers in the backward pass instead of keeping their activations
/// (transformers' <c>gradient_checkpointing_enable()</c>): less memory for one more forward per layer.
/// With it on, a training forward (training mode, autograd on) runs the layers without keeping their
/// activations, and <see cref="BackwardCheckpointedLayers"/> must follow the loss's <c>backward()</c>.
/// </summary>
public interface IGradientCheckpointing
{
    /// <summary>Whether training forwards checkpoint each decoder layer.</summary>
    bool GradientCheckpointing { get; set; }

    /// <summary>
    /// After <c>loss.backward()</c>: back-propagates through the layers the last checkpointed forward
    /// ran (recomputing each); does nothing when there was none.
    /// </summary>
    void BackwardCheckpointedLayers();
}
