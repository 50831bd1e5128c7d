namespace PeftHost.Training.Loop;

/// <summary>How a run ended.</summary>
public enum TrainStatus
{
    /// <summary>It ran its steps (or early stopping ended it).</summary>
    Completed,

    /// <summary>The cancellation token fired: a checkpoint was saved to resume from.</summary>
    Cancelled,
}

/// <summary>The outcome of <see cref="Trainer.Train"/>.</summary>
/// <param name="Status">Completed or cancelled.</param>
/// <param name="GlobalStep">Optimiser steps done.</param>
/// <param name="TrainLoss">The mean loss over every step of the run.</param>
/// <param name="Runtime">Wall time of this session.</param>
/// <param name="LastCheckpoint">The last checkpoint written, if any.</param>
/// <param name="OutputDir">Where the final adapter and logs are.</param>
public sealed record TrainResult(TrainStatus Status, int GlobalStep, double TrainLoss, TimeSpan Runtime, string? LastCheckpoint, string OutputDir);
