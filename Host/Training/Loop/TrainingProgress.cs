namespace PeftHost.Training.Loop;

/// <summary>What a run reports through <see cref="IProgress{T}"/> (a desktop app's progress bar, the CLI's live line).</summary>
public enum TrainingPhase
{
    /// <summary>An optimiser step finished.</summary>
    Step,

    /// <summary>A log entry was made.</summary>
    Log,

    /// <summary>An evaluation finished.</summary>
    Evaluate,

    /// <summary>A checkpoint was written.</summary>
    Save,

    /// <summary>The run ended.</summary>
    End,
}

/// <summary>One progress report.</summary>
/// <param name="Phase">What happened.</param>
/// <param name="Step">Optimiser steps done.</param>
/// <param name="MaxSteps">The run's steps.</param>
/// <param name="Epoch">Epochs done (fractional).</param>
/// <param name="Loss">The latest logged training loss, if any.</param>
/// <param name="LearningRate">The current learning rate.</param>
/// <param name="TokensPerSecond">Real tokens per second since the run (or resume) began.</param>
/// <param name="Elapsed">Time since the run (or resume) began.</param>
/// <param name="Remaining">Estimated time left.</param>
/// <param name="Message">A line for people (the log entry, the checkpoint path, ...).</param>
/// <param name="Metrics">The log entry's or evaluation's numbers.</param>
public sealed record TrainingProgress(TrainingPhase Phase, int Step, int MaxSteps, double Epoch, double? Loss, double LearningRate,
    double TokensPerSecond, TimeSpan Elapsed, TimeSpan? Remaining, string? Message, IReadOnlyDictionary<string, double>? Metrics);
