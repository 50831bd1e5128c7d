using PeftHost.Abstractions.State;
using PeftHost.Abstractions.Tuning;
using static TorchSharp.torch;

namespace PeftHost.Engine.Peft;

// What a trainer asks of an adapter's method beyond its parameters (ITrainingHooksModel, contract 1.1):
// the host calls the method's hooks, guarded like every plugin call; a method without them trains
// through its parameters alone.
public sealed partial class PeftModel
{
    /// <summary>Tells the adapter's method that a run of <paramref name="totalSteps"/> optimiser steps starts (<see cref="ITrainingHooksModel.BeginTraining"/>).</summary>
    /// <exception cref="KeyNotFoundException">No adapter of that name.</exception>
    public void BeginTraining(string adapter, int totalSteps) => Hooks(adapter, "begin training", h => h.BeginTraining(adapter, totalSteps));

    /// <summary>The method's term to add to a training micro-batch's loss (<see cref="ITrainingHooksModel.RegularizationLoss"/>), or null; the caller disposes it.</summary>
    /// <exception cref="KeyNotFoundException">No adapter of that name.</exception>
    public Tensor? RegularizationLoss(string adapter) => Read(() =>
    {
        TunerSlot slot = SlotOf(adapter);
        return slot.Model is ITrainingHooksModel h ? Guard(slot, "regularization loss", () => h.RegularizationLoss(adapter)) : null;
    });

    /// <summary>
    /// The method's work after an optimiser step, before the gradients are zeroed (<see cref="ITrainingHooksModel.AfterOptimizerStep"/>,
    /// PEFT's <c>update_and_allocate</c>); <paramref name="step"/> counts the steps completed before this one. Runs without autograd.
    /// </summary>
    /// <exception cref="KeyNotFoundException">No adapter of that name.</exception>
    public void AfterOptimizerStep(string adapter, int step) => Hooks(adapter, "after optimizer step", h =>
    {
        using (no_grad()) h.AfterOptimizerStep(adapter, step);
    });

    /// <summary>The method's training-only state for a checkpoint (<see cref="ITrainingHooksModel.ExportTrainingState"/>), or null; the caller disposes it.</summary>
    /// <exception cref="KeyNotFoundException">No adapter of that name.</exception>
    public TrainingState? ExportTrainingState(string adapter) => Read(() =>
    {
        TunerSlot slot = SlotOf(adapter);
        return slot.Model is ITrainingHooksModel h ? Guard(slot, "export training state", () => h.ExportTrainingState(adapter)) : null;
    });

    /// <summary>Hands a checkpoint's training-only state back to the adapter's method (<see cref="ITrainingHooksModel.ImportTrainingState"/>).</summary>
    /// <exception cref="KeyNotFoundException">No adapter of that name.</exception>
    /// <exception cref="NotSupportedException">The adapter's method keeps no training state, so the state cannot be for it.</exception>
    /// <exception cref="InvalidDataException">The state does not fit the adapter.</exception>
    public void ImportTrainingState(string adapter, TrainingState state) => Write(() =>
    {
        TunerSlot slot = SlotOf(adapter);
        if (slot.Model is not ITrainingHooksModel h)
            throw new NotSupportedException($"Adapter '{adapter}' is {slot.PeftType}, whose plugin ({slot.Plugin.Label}) keeps no training state; this state is not for it.");
        Guard(slot, "import training state", () => h.ImportTrainingState(adapter, state));
    });

    private void Hooks(string adapter, string operation, Action<ITrainingHooksModel> call) => Write(() =>
    {
        TunerSlot slot = SlotOf(adapter);
        if (slot.Model is ITrainingHooksModel h) Guard(slot, operation, () => call(h));
    });
}
