using System.Text.Json.Nodes;
using PeftHost.Training.Arguments;

namespace PeftHost.Training.Loop;

/// <summary>
/// Hooks into the training loop, in the spirit of transformers' <c>TrainerCallback</c>: each event gets
/// the arguments, the state and the control, through which a callback can stop the run.
/// </summary>
public abstract class TrainerCallback
{
    /// <summary>Before the first step (after a resume's state is restored).</summary>
    public virtual void OnTrainBegin(TrainingArguments args, TrainerState state, TrainerControl control) { }

    /// <summary>After each optimiser step.</summary>
    public virtual void OnStepEnd(TrainingArguments args, TrainerState state, TrainerControl control) { }

    /// <summary>When a log entry is made (training, evaluation or the final summary).</summary>
    public virtual void OnLog(TrainingArguments args, TrainerState state, TrainerControl control, JsonObject logs) { }

    /// <summary>After an evaluation, with its eval_* metrics.</summary>
    public virtual void OnEvaluate(TrainingArguments args, TrainerState state, TrainerControl control, IReadOnlyDictionary<string, double> metrics) { }

    /// <summary>After a checkpoint folder is complete.</summary>
    public virtual void OnSave(TrainingArguments args, TrainerState state, TrainerControl control, string checkpoint) { }

    /// <summary>When the run ends (finished, stopped or cancelled).</summary>
    public virtual void OnTrainEnd(TrainingArguments args, TrainerState state, TrainerControl control) { }
}

/// <summary>What callbacks ask of the loop (transformers' <c>TrainerControl</c>).</summary>
public sealed class TrainerControl
{
    /// <summary>Stop after this step.</summary>
    public bool ShouldTrainingStop { get; set; }
}
