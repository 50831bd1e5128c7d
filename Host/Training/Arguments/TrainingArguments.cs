using System.Text.Json.Nodes;

namespace PeftHost.Training.Arguments;

/// <summary>
/// The settings of a training run, with Hugging Face's names and defaults (transformers'
/// <c>TrainingArguments</c>, TRL's <c>SFTConfig</c> for the data fields), so a config carries over.
/// <see cref="TrainingArgumentsReader"/> reads them from JSON or YAML by those names.
/// </summary>
public sealed record TrainingArguments
{
    /// <summary><c>output_dir</c>: where checkpoints, the final adapter and the logs go.</summary>
    public string OutputDir { get; init; } = "";

    /// <summary><c>num_train_epochs</c> (a fraction runs part of the last epoch).</summary>
    public double NumTrainEpochs { get; init; } = 3.0;

    /// <summary><c>max_steps</c>: optimiser steps; when positive it overrides <see cref="NumTrainEpochs"/>.</summary>
    public int MaxSteps { get; init; } = -1;

    /// <summary><c>per_device_train_batch_size</c>.</summary>
    public int PerDeviceTrainBatchSize { get; init; } = 8;

    /// <summary><c>per_device_eval_batch_size</c>.</summary>
    public int PerDeviceEvalBatchSize { get; init; } = 8;

    /// <summary><c>gradient_accumulation_steps</c>: micro-batches per optimiser step.</summary>
    public int GradientAccumulationSteps { get; init; } = 1;

    /// <summary><c>learning_rate</c>: AdamW's initial rate.</summary>
    public double LearningRate { get; init; } = 5e-5;

    /// <summary><c>weight_decay</c> (not applied to biases and norm layers, as transformers groups them).</summary>
    public double WeightDecay { get; init; }

    /// <summary><c>adam_beta1</c>.</summary>
    public double AdamBeta1 { get; init; } = 0.9;

    /// <summary><c>adam_beta2</c>.</summary>
    public double AdamBeta2 { get; init; } = 0.999;

    /// <summary><c>adam_epsilon</c>.</summary>
    public double AdamEpsilon { get; init; } = 1e-8;

    /// <summary><c>optim</c>: only "adamw_torch".</summary>
    public string Optim { get; init; } = "adamw_torch";

    /// <summary><c>max_grad_norm</c>: clipping by the global norm; 0 disables it.</summary>
    public double MaxGradNorm { get; init; } = 1.0;

    /// <summary><c>lr_scheduler_type</c>.</summary>
    public string LrSchedulerType { get; init; } = "linear";

    /// <summary><c>lr_scheduler_kwargs</c> (num_cycles, power, lr_end, ...).</summary>
    public JsonObject LrSchedulerKwargs { get; init; } = [];

    /// <summary><c>warmup_steps</c>; when 0, <see cref="WarmupRatio"/> of the steps.</summary>
    public int WarmupSteps { get; init; }

    /// <summary><c>warmup_ratio</c>.</summary>
    public double WarmupRatio { get; init; }

    /// <summary><c>logging_steps</c> (below 1: a ratio of the total steps).</summary>
    public double LoggingSteps { get; init; } = 500;

    /// <summary><c>eval_strategy</c>.</summary>
    public IntervalStrategy EvalStrategy { get; init; } = IntervalStrategy.No;

    /// <summary><c>eval_steps</c> (default: <see cref="LoggingSteps"/>; below 1: a ratio of the total steps).</summary>
    public double? EvalSteps { get; init; }

    /// <summary><c>save_strategy</c>.</summary>
    public IntervalStrategy SaveStrategy { get; init; } = IntervalStrategy.Steps;

    /// <summary><c>save_steps</c> (below 1: a ratio of the total steps).</summary>
    public double SaveSteps { get; init; } = 500;

    /// <summary><c>save_total_limit</c>: checkpoints kept (the best one always among them).</summary>
    public int? SaveTotalLimit { get; init; }

    /// <summary><c>load_best_model_at_end</c>.</summary>
    public bool LoadBestModelAtEnd { get; init; }

    /// <summary><c>metric_for_best_model</c> ("loss" when <see cref="LoadBestModelAtEnd"/> and unset; "eval_" is implied).</summary>
    public string? MetricForBestModel { get; init; }

    /// <summary><c>greater_is_better</c> (default: false for a loss, true otherwise).</summary>
    public bool? GreaterIsBetter { get; init; }

    /// <summary><c>early_stopping_patience</c> (transformers' <c>EarlyStoppingCallback</c>): evaluations without improvement before stopping.</summary>
    public int? EarlyStoppingPatience { get; init; }

    /// <summary><c>early_stopping_threshold</c>: how much better a metric must be to count as improvement.</summary>
    public double EarlyStoppingThreshold { get; init; }

    /// <summary><c>seed</c>: data order and every random draw of the run.</summary>
    public int Seed { get; init; } = 42;

    /// <summary><c>gradient_checkpointing</c>: recompute each decoder layer in the backward pass instead of keeping its activations.</summary>
    public bool GradientCheckpointing { get; init; }

    /// <summary>TRL's <c>max_length</c> (alias <c>max_seq_length</c>): examples are truncated to it, packed rows are this long.</summary>
    public int MaxLength { get; init; } = 1024;

    /// <summary>TRL's <c>packing</c>: several examples per row, never attending to one another.</summary>
    public bool Packing { get; init; }

    /// <summary>TRL's <c>completion_only_loss</c>: prompt + completion rows count the completion only.</summary>
    public bool CompletionOnlyLoss { get; init; } = true;

    /// <summary>TRL's <c>assistant_only_loss</c>: chat rows count the assistant turns only.</summary>
    public bool AssistantOnlyLoss { get; init; }

    /// <summary>Ours: shuffle the training rows each epoch (seeded).</summary>
    public bool Shuffle { get; init; } = true;

    /// <summary>Ours: the fraction of the training rows held out for evaluation when no eval file is given (0: none).</summary>
    public double EvalSplit { get; init; }
}
