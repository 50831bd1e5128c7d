using System.Text.Json.Nodes;
using PeftHost.Training.Checkpoints;

namespace PeftHost.Training.Loop;

/// <summary>
/// What transformers' <c>TrainerState</c> holds, written as <c>trainer_state.json</c> with its field
/// names: global_step, epoch, max_steps, log_history, best_metric, best_model_checkpoint, ...
/// </summary>
public sealed class TrainerState
{
    /// <summary>The file name.</summary>
    public const string FileName = "trainer_state.json";

    /// <summary>Optimiser steps taken.</summary>
    public int GlobalStep { get; set; }

    /// <summary>Epochs done, with the fraction of the current one.</summary>
    public double Epoch { get; set; }

    /// <summary>The run's optimiser steps.</summary>
    public int MaxSteps { get; set; }

    /// <summary>The run's epochs.</summary>
    public int NumTrainEpochs { get; set; }

    /// <summary>logging_steps as steps.</summary>
    public int LoggingSteps { get; set; }

    /// <summary>eval_steps as steps.</summary>
    public int EvalSteps { get; set; }

    /// <summary>save_steps as steps.</summary>
    public int SaveSteps { get; set; }

    /// <summary>per_device_train_batch_size.</summary>
    public int TrainBatchSize { get; set; }

    /// <summary>The best value of metric_for_best_model so far.</summary>
    public double? BestMetric { get; set; }

    /// <summary>The checkpoint folder that holds it.</summary>
    public string? BestModelCheckpoint { get; set; }

    /// <summary>Every log entry (training, evaluation, the final summary), in order.</summary>
    public List<JsonObject> LogHistory { get; } = [];

    /// <summary>Real tokens trained on so far.</summary>
    public long NumInputTokensSeen { get; set; }

    /// <summary>The state as transformers writes it.</summary>
    public JsonObject ToJson() => new()
    {
        ["best_metric"] = BestMetric, ["best_model_checkpoint"] = BestModelCheckpoint, ["epoch"] = Epoch,
        ["eval_steps"] = EvalSteps, ["global_step"] = GlobalStep, ["is_hyper_param_search"] = false,
        ["is_local_process_zero"] = true, ["is_world_process_zero"] = true,
        ["log_history"] = new JsonArray([.. LogHistory.Select(e => (JsonNode)e.DeepClone())]),
        ["logging_steps"] = LoggingSteps, ["max_steps"] = MaxSteps, ["num_input_tokens_seen"] = NumInputTokensSeen,
        ["num_train_epochs"] = NumTrainEpochs, ["save_steps"] = SaveSteps, ["total_flos"] = 0.0,
        ["train_batch_size"] = TrainBatchSize, ["trial_name"] = null, ["trial_params"] = null,
    };

    /// <summary>Reads a <c>trainer_state.json</c>.</summary>
    public static TrainerState Read(string path)
    {
        JsonObject o = CheckpointJson.Read(path);
        var state = new TrainerState
        {
            GlobalStep = o["global_step"]?.GetValue<int>() ?? throw new InvalidDataException($"{path}: no global_step."),
            Epoch = o["epoch"]?.GetValue<double>() ?? 0,
            MaxSteps = o["max_steps"]?.GetValue<int>() ?? 0,
            NumTrainEpochs = o["num_train_epochs"]?.GetValue<int>() ?? 0,
            LoggingSteps = o["logging_steps"]?.GetValue<int>() ?? 0,
            EvalSteps = o["eval_steps"]?.GetValue<int>() ?? 0,
            SaveSteps = o["save_steps"]?.GetValue<int>() ?? 0,
            TrainBatchSize = o["train_batch_size"]?.GetValue<int>() ?? 0,
            BestMetric = o["best_metric"]?.GetValue<double>(),
            BestModelCheckpoint = o["best_model_checkpoint"]?.GetValue<string>(),
            NumInputTokensSeen = o["num_input_tokens_seen"]?.GetValue<long>() ?? 0,
        };
        if (o["log_history"] is JsonArray history)
            foreach (JsonNode? e in history)
                if (e is JsonObject entry) state.LogHistory.Add((JsonObject)entry.DeepClone());
        return state;
    }
}
