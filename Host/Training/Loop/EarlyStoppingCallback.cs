using PeftHost.Training.Arguments;

namespace PeftHost.Training.Loop;

/// <summary>
/// transformers' <c>EarlyStoppingCallback</c>: stops when metric_for_best_model has not improved by
/// more than early_stopping_threshold for early_stopping_patience evaluations in a row.
/// </summary>
public sealed class EarlyStoppingCallback(int patience, double threshold) : TrainerCallback
{
    /// <summary>Evaluations without improvement so far (kept in checkpoints).</summary>
    public int PatienceCounter { get; set; }

    private double? _best;

    /// <summary>The best value seen (kept in checkpoints).</summary>
    public double? Best
    {
        get => _best;
        set => _best = value;
    }

    /// <inheritdoc />
    public override void OnEvaluate(TrainingArguments args, TrainerState state, TrainerControl control, IReadOnlyDictionary<string, double> metrics)
    {
        string key = BestMetric.Key(args);
        if (!metrics.TryGetValue(key, out double value)) return;
        bool greater = BestMetric.GreaterIsBetter(args);
        bool improved = _best is null || (greater ? value > _best + threshold : value < _best - threshold);
        if (improved)
        {
            _best = value;
            PatienceCounter = 0;
        }
        else PatienceCounter++;
        if (PatienceCounter >= patience) control.ShouldTrainingStop = true;
    }
}

/// <summary>metric_for_best_model and greater_is_better as transformers resolves them.</summary>
public static class BestMetric
{
    /// <summary>The metric key: "eval_" + metric_for_best_model (default "loss") unless it starts so already.</summary>
    public static string Key(TrainingArguments args)
    {
        string name = args.MetricForBestModel ?? "loss";
        return name.StartsWith("eval_", StringComparison.Ordinal) ? name : "eval_" + name;
    }

    /// <summary>greater_is_better, defaulting to false for losses and true otherwise.</summary>
    public static bool GreaterIsBetter(TrainingArguments args) =>
        args.GreaterIsBetter ?? !(args.MetricForBestModel is null or "loss" or "eval_loss" or "perplexity" or "eval_perplexity");
}
