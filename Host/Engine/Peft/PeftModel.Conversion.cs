using PeftHost.Abstractions.State;
using PeftHost.Abstractions.Tuning;
using static TorchSharp.torch;

namespace PeftHost.Engine.Peft;

// Saving adapters converted against the untouched base (PEFT's save_pretrained with
// path_initial_model_for_weight_conversion): the method does the conversion (IWeightConversionModel).
public sealed partial class PeftModel
{
    /// <summary>
    /// Saves adapters as <see cref="SavePretrained(string, IReadOnlyList{string}?, AdapterSaveOptions?)"/> does, each converted by its
    /// method from an initialisation that changed the base weights to an adapter of the untouched base (LoRA's
    /// PiSSA / OLoRA become plain LoRA). The modules_to_save copies are saved as they are.
    /// </summary>
    /// <param name="directory">The output folder.</param>
    /// <param name="convertFromInitial">The adapter's state right after initialisation (e.g. <see cref="ExportAdapter"/> before training, or a folder read with <see cref="AdapterFolder.Read"/>).</param>
    /// <param name="selectedAdapters">PEFT's <c>selected_adapters</c> (default: all).</param>
    /// <param name="options">What else to record (default: nothing else).</param>
    /// <exception cref="NotSupportedException">An adapter's method cannot convert (it has no <see cref="IWeightConversionModel"/>), or this adapter's configuration cannot.</exception>
    /// <exception cref="InvalidDataException">The initial state lacks a tensor or has another shape.</exception>
    public void SavePretrained(string directory, AdapterState convertFromInitial, IReadOnlyList<string>? selectedAdapters = null, AdapterSaveOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(convertFromInitial);
        // Everything is converted before anything is written: an error leaves no half-saved folder.
        Save(directory, selectedAdapters ?? Adapters, name => Converted(name, convertFromInitial), options);
    }

    /// <summary>
    /// <see cref="SavePretrained(string, AdapterState, IReadOnlyList{string}?, AdapterSaveOptions?)"/> with the initial adapter
    /// read from a PEFT adapter folder (PEFT's <c>path_initial_model_for_weight_conversion</c>).
    /// </summary>
    public void SavePretrained(string directory, string initialAdapterFolder, IReadOnlyList<string>? selectedAdapters = null, AdapterSaveOptions? options = null)
    {
        using AdapterState initial = AdapterFolder.Read(initialAdapterFolder, "initial");
        SavePretrained(directory, initial, selectedAdapters, options);
    }

    /// <summary>
    /// Whether <paramref name="adapter"/>'s initialisation changed the base weights, so that a save for the untouched base
    /// needs its initial state (LoRA's PiSSA and OLoRA; asked of the method through <see cref="IWeightConversionModel"/>).
    /// </summary>
    /// <exception cref="KeyNotFoundException">No adapter of that name.</exception>
    public bool ChangedBaseWeights(string adapter) => Read(() =>
    {
        TunerSlot slot = SlotOf(adapter);
        return slot.Model is IWeightConversionModel conversion && Guard(slot, "changed base weights", () => conversion.ChangedBaseWeights(adapter));
    });

    private AdapterState Converted(string name, AdapterState initial) => Read(() =>
    {
        TunerSlot slot = SlotOf(name);
        if (slot.Model is not IWeightConversionModel conversion)
            throw new NotSupportedException($"Adapter '{name}' is {slot.PeftType}, whose plugin ({slot.Plugin.Label}) cannot convert an adapter against the untouched base weights; only methods whose initialisation changes them (LoRA's PiSSA and OLoRA) can.");
        using AdapterState trained = Exported(slot, name);
        AdapterState result = Guard(slot, "convert", () => conversion.ConvertFromInitial(trained, initial));
        if (!_modulesToSave.Holds(name)) return result;
        var tensors = new Dictionary<string, Tensor>(result.Tensors, StringComparer.Ordinal);
        _modulesToSave.Export(name, tensors);
        return new AdapterState(result.Name, result.Config, tensors) { ModelTensors = result.ModelTensors };
    });
}
