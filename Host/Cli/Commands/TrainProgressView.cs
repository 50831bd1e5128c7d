using System.Globalization;
using PeftHost.Training.Loop;
using Spectre.Console;

namespace PeftHost.Cli.Commands;

/// <summary>
/// Shows a training run: on a terminal a live Spectre.Console progress bar (step / total, loss,
/// learning rate, tokens/s, ETA) with evaluations and checkpoints printed above it; piped, one plain
/// line per log entry, evaluation and checkpoint.
/// </summary>
internal sealed class TrainProgressView : IProgress<TrainingProgress>
{
    private static readonly CultureInfo C = CultureInfo.InvariantCulture;
    private ProgressTask? _task;
    private double? _loss;

    public static bool Live => !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive;

    /// <summary>Runs <paramref name="run"/> with the view attached.</summary>
    public T Show<T>(Func<TrainProgressView, T> run)
    {
        if (!Live) return run(this);
        T result = default!;
        AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .Start(ctx =>
            {
                _task = ctx.AddTask("starting", maxValue: 1);
                result = run(this);
                _task.StopTask();
            });
        return result;
    }

    public void Report(TrainingProgress p)
    {
        switch (p.Phase)
        {
            case TrainingPhase.Step when _task is not null:
                _loss = p.Loss ?? _loss;
                _task.MaxValue = p.MaxSteps;
                _task.Value = p.Step;
                _task.Description = Markup.Escape(string.Create(C, $"step {p.Step}/{p.MaxSteps} loss {(_loss is double l ? l.ToString("F4", C) : "-")} lr {p.LearningRate:E2} {p.TokensPerSecond:F0} tok/s"));
                break;
            case TrainingPhase.Log when p.Metrics is { } m && m.ContainsKey("loss"):
                if (_task is null)
                    Console.WriteLine(string.Create(C, $"step {p.Step}/{p.MaxSteps}  epoch {p.Epoch:F2}  loss {m["loss"]:F4}  lr {m.GetValueOrDefault("learning_rate"):E3}") +
                        (m.TryGetValue("grad_norm", out double g) ? string.Create(C, $"  grad_norm {g:F4}") : ""));
                break;
            case TrainingPhase.Evaluate:
                Line(string.Create(C, $"eval at step {p.Step}: {p.Message}"));
                break;
            case TrainingPhase.Save:
            case TrainingPhase.End:
                Line(p.Message ?? "");
                break;
        }
    }

    private void Line(string text)
    {
        if (_task is not null) AnsiConsole.MarkupLine(Markup.Escape(text));
        else Console.WriteLine(text);
    }
}
