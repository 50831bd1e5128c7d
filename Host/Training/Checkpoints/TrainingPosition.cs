using System.Text.Json.Nodes;

namespace PeftHost.Training.Checkpoints;

/// <summary>
/// Where a run is in its data and its running sums, written with each checkpoint (training_position.json),
/// so that a resumed run continues at the next micro-batch with the same sums and the same order.
/// </summary>
public sealed record TrainingPosition
{
    /// <summary>The file name in a checkpoint.</summary>
    public const string FileName = "training_position.json";

    /// <summary>The epoch being trained (0-based).</summary>
    public int Epoch { get; init; }

    /// <summary>The next micro-batch of that epoch.</summary>
    public int NextBatch { get; init; }

    /// <summary>Micro-batches trained over the whole run (transformers' total_batched_samples).</summary>
    public long TotalBatches { get; init; }

    /// <summary>The sum of the optimiser steps' losses since the last log.</summary>
    public double LossSinceLog { get; init; }

    /// <summary>The sum of every step's loss (for train_loss).</summary>
    public double TotalLoss { get; init; }

    /// <summary>The step of the last log.</summary>
    public int LastLoggedStep { get; init; }

    /// <summary>The epoch's example order (checked against the one recomputed from the seed).</summary>
    public int[] Order { get; init; } = [];

    /// <summary>Early stopping: evaluations without improvement.</summary>
    public int EarlyStoppingCounter { get; init; }

    /// <summary>Early stopping: the best value seen.</summary>
    public double? EarlyStoppingBest { get; init; }

    /// <summary>As JSON.</summary>
    public JsonObject ToJson() => new()
    {
        ["epoch"] = Epoch, ["next_batch"] = NextBatch, ["total_batches"] = TotalBatches,
        // Sums are written with round-trip precision (R), so a resumed run logs bitwise the same losses.
        ["loss_since_log"] = LossSinceLog, ["total_loss"] = TotalLoss, ["last_logged_step"] = LastLoggedStep,
        ["early_stopping_counter"] = EarlyStoppingCounter, ["early_stopping_best"] = EarlyStoppingBest,
        ["order"] = new JsonArray([.. Order.Select(i => (JsonNode)i)]),
    };

    /// <summary>Reads one.</summary>
    public static TrainingPosition Read(string path)
    {
        JsonObject o = CheckpointJson.Read(path);
        try
        {
            return new TrainingPosition
            {
                Epoch = o["epoch"]!.GetValue<int>(), NextBatch = o["next_batch"]!.GetValue<int>(), TotalBatches = o["total_batches"]!.GetValue<long>(),
                LossSinceLog = o["loss_since_log"]!.GetValue<double>(), TotalLoss = o["total_loss"]!.GetValue<double>(),
                LastLoggedStep = o["last_logged_step"]!.GetValue<int>(), EarlyStoppingCounter = o["early_stopping_counter"]?.GetValue<int>() ?? 0,
                EarlyStoppingBest = o["early_stopping_best"]?.GetValue<double>(),
                Order = [.. ((JsonArray)o["order"]!).Select(n => n!.GetValue<int>())],
            };
        }
        catch (Exception e) when (e is NullReferenceException or InvalidOperationException or FormatException or InvalidCastException)
        {
            throw new InvalidDataException($"{path}: malformed training position ({e.Message}).", e);
        }
    }
}
