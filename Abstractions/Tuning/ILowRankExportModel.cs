using PeftHost.Abstractions.State;

namespace PeftHost.Abstractions.Tuning;

/// <summary>
/// A tuner model that can write an adapter as low-rank factors, one pair per adapted module, whose
/// change of the module's weight is ΔW = Scale · B·A (<see cref="LowRankFactors"/>). The host asks for it
/// to hand an adapter, unmerged, to runtimes that apply nothing but such pairs (llama.cpp's GGUF-LoRA,
/// the Vulkan forward); an adapter of a method without it runs merged into the base weights there
/// instead, when its method can merge (<see cref="ITunerModel.CanMerge"/>). Added in contract 1.1.
/// </summary>
/// <remarks>
/// The method folds everything that is its own into the factors and the scale: its scaling rule
/// (LoRA's alpha / r, rsLoRA's alpha / √r, per-module rank and alpha patterns), weight layouts (a GPT-2
/// Conv1D's transposed weight), extra factors (AdaLoRA's singular values). What the pairs cannot express
/// (a DoRA magnitude, trained biases, base weights saved with the adapter) is a refusal with the reason,
/// never a silently smaller adapter.
/// </remarks>
public interface ILowRankExportModel : ITunerModel
{
    /// <summary>
    /// Adapter <paramref name="adapter"/> as low-rank factors, or the reason it cannot be expressed so
    /// (<see cref="LowRankExport.Refused"/>). Pure data: the model does not change.
    /// </summary>
    /// <param name="adapter">An adapter this model holds (merged or not: the factors are the adapter's own).</param>
    /// <returns>A new export the caller owns and disposes.</returns>
    /// <exception cref="KeyNotFoundException">The model holds no adapter of that name.</exception>
    LowRankExport ExportLowRank(string adapter);
}
