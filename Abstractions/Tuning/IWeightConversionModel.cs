using PeftHost.Abstractions.State;

namespace PeftHost.Abstractions.Tuning;

/// <summary>
/// A tuner model whose initialisation may change the base weights (LoRA's PiSSA and OLoRA) and which can
/// express a trained adapter against the untouched base instead (PEFT's
/// <c>save_pretrained(path_initial_model_for_weight_conversion=...)</c>). The host asks for it when saving
/// with a conversion; a method without it cannot convert.
/// </summary>
public interface IWeightConversionModel : ITunerModel
{
    /// <summary>
    /// The adapter <paramref name="trained"/> rewritten so that the untouched base plus it equals the
    /// modified base plus the trained adapter. Pure data: neither the model nor the inputs change.
    /// </summary>
    /// <param name="trained">The adapter as exported now (config and tensors), the base holding its residual.</param>
    /// <param name="initial">The same adapter as exported right after its initialisation.</param>
    /// <returns>A new state the caller owns (name and keys as <paramref name="trained"/>'s).</returns>
    /// <exception cref="NotSupportedException">This adapter's configuration cannot be converted (the message says why).</exception>
    /// <exception cref="InvalidDataException">The initial state lacks a tensor or has another shape.</exception>
    AdapterState ConvertFromInitial(AdapterState trained, AdapterState initial);

    /// <summary>
    /// Whether adding <paramref name="adapter"/> changed the base weights here (it was initialised, not imported,
    /// with a method that does, e.g. PiSSA), so that saving it for the untouched base needs its initial state: a
    /// trainer then keeps that state and converts the adapter on every save. Default: false (a method whose
    /// initialisation changes the base must say so).
    /// </summary>
    /// <exception cref="KeyNotFoundException">No adapter of that name.</exception>
    bool ChangedBaseWeights(string adapter) => false;
}
