namespace PeftHost.Training.Arguments;

/// <summary>When to evaluate or save (transformers' <c>IntervalStrategy</c>: "no", "steps", "epoch").</summary>
public enum IntervalStrategy
{
    /// <summary>Never.</summary>
    No,

    /// <summary>Every <c>eval_steps</c> / <c>save_steps</c> optimiser steps.</summary>
    Steps,

    /// <summary>At the end of each epoch.</summary>
    Epoch,
}
