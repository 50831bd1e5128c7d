using PeftHost.Abstractions.Layers;

namespace PeftHost.Plugins.Lora;

/// <summary>
/// LoRA on transformers' GPT-2 <see cref="Conv1D"/> (weight [in, out]): PEFT adapts it with its
/// <c>lora.Linear</c> and <c>fan_in_fan_out=True</c>, so the factors are named and shaped as for a
/// Linear (<c>lora_A</c> [r, in], <c>lora_B</c> [out, r]) and ΔW is transposed to [in, out] to merge.
/// </summary>
public sealed class LoraConv1D : LoraLinear
{
    /// <summary>Wraps a Conv1D layer.</summary>
    public LoraConv1D(Conv1D baseLayer)
        : base(nameof(LoraConv1D), baseLayer, baseLayer.InFeatures, baseLayer.OutFeatures, fanInFanOut: true) { }
}
