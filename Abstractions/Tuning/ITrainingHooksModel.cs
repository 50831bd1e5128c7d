using PeftHost.Abstractions.State;
using static TorchSharp.torch;

namespace PeftHost.Abstractions.Tuning;

/// <summary>
/// A tuner model that takes part in training beyond holding trainable parameters (contract 1.1): a term
/// added to the loss, work after each optimiser step, and state that lives only while training (PEFT's
/// AdaLoRA: <c>orth_reg_weight</c> and <c>update_and_allocate</c>). The host's trainer calls it in the
/// order transformers' <c>Trainer</c> and PEFT's examples do; a plugin never sees the trainer's types.
/// Every member has a default that does nothing, so a method implements only what it needs; a tuner
/// model without this interface trains through its parameters alone.
/// </summary>
/// <remarks>
/// One run trains one adapter, <c>adapter</c> in every call. The order for one optimiser step is:
/// for each micro-batch, the forward pass, <see cref="RegularizationLoss"/> added to the task's loss, the
/// backward pass; then gradient clipping, the optimiser step, <see cref="AfterOptimizerStep"/> (the
/// gradients are still those the step used), the learning-rate schedule's step, and zeroed gradients.
/// </remarks>
public interface ITrainingHooksModel : ITunerModel
{
    /// <summary>
    /// Called once when a run starts, fresh or resumed, before any forward pass, with the run's total
    /// number of optimiser steps (transformers' <c>max_steps</c>). On resume,
    /// <see cref="ImportTrainingState"/> follows it. Default: nothing.
    /// </summary>
    /// <param name="adapter">The adapter trained.</param>
    /// <param name="totalSteps">The optimiser steps the run will take (at least 1).</param>
    void BeginTraining(string adapter, int totalSteps) { }

    /// <summary>
    /// A term to add to each training micro-batch's loss, after the forward pass and before the loss is
    /// divided by gradient_accumulation_steps and back-propagated (PEFT adds AdaLoRA's orthogonal
    /// regularisation to the model's loss the same way), or null for none. The logged training loss
    /// includes it. It must depend on the adapter's parameters through autograd; the host disposes it.
    /// Default: null.
    /// </summary>
    /// <param name="adapter">The adapter trained.</param>
    /// <returns>A 0-d floating-point tensor on the model's device, or null.</returns>
    Tensor? RegularizationLoss(string adapter) => null;

    /// <summary>
    /// Called after each optimiser step and before the gradients are zeroed, so they can still be read
    /// (PEFT's <c>update_and_allocate</c>). Runs without autograd recording. Default: nothing.
    /// </summary>
    /// <param name="adapter">The adapter trained.</param>
    /// <param name="step">
    /// The optimiser steps completed before this one: 0 after the first step (transformers' <c>global_step</c>
    /// when its <c>on_optimizer_step</c> runs, and what PEFT's examples pass to <c>update_and_allocate</c>).
    /// </param>
    void AfterOptimizerStep(string adapter, int step) { }

    /// <summary>
    /// The training-only state to write into a checkpoint, or null for none (the saved adapter is then
    /// all there is). The caller disposes it. Default: null.
    /// </summary>
    /// <param name="adapter">The adapter trained.</param>
    TrainingState? ExportTrainingState(string adapter) => null;

    /// <summary>
    /// Restores the state <see cref="ExportTrainingState"/> gave, on resume: the checkpoint's adapter has
    /// just been loaded (trainable) and <see cref="BeginTraining"/> called; the optimiser is created after
    /// this call, so parameters may be replaced here (e.g. by their untruncated form). Default: nothing.
    /// </summary>
    /// <param name="adapter">The adapter trained.</param>
    /// <param name="state">The state read from the checkpoint (the caller owns it).</param>
    /// <exception cref="InvalidDataException">The state does not fit the adapter (the message says why).</exception>
    void ImportTrainingState(string adapter, TrainingState state) { }
}
