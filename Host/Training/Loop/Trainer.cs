using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using PeftHost.Abstractions.State;
using PeftHost.Engine.Peft;
using PeftHost.Engine.Runtime;
using PeftHost.Formats;
using PeftHost.Models;
using PeftHost.Training.Arguments;
using PeftHost.Training.Checkpoints;
using PeftHost.Training.Data;
using PeftHost.Training.Evaluation;
using PeftHost.Training.Optimization;
using PeftHost.Training.Reports;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Training.Loop;

/// <summary>
/// Trains a PEFT model's adapter as transformers' <c>Trainer</c> does: epochs of seeded, shuffled
/// micro-batches; the loss of each divided by gradient_accumulation_steps and back-propagated;
/// every gradient_accumulation_steps micro-batches, clipping by the global norm, an AdamW step, a
/// scheduler step and zeroed gradients; logs, evaluations and atomic checkpoints at their intervals;
/// callbacks, an <see cref="IProgress{T}"/> stream and a cancellation token (which saves a checkpoint).
/// A run resumed from a checkpoint continues bitwise as the uninterrupted run would.
/// </summary>
public sealed class Trainer
{
    /// <summary>The log of every entry, one JSON object per line, written as they happen.</summary>
    public const string LogFile = "train_log.jsonl";

    /// <summary>Where an adapter whose initialisation changed the base weights (PiSSA, OLoRA) is kept as initialised, in output_dir.</summary>
    public const string InitialAdapterFolder = "initial_adapter";

    /// <summary>Where a checkpoint keeps such an adapter as trained, against the residual base (its saved adapter is converted).</summary>
    public const string UnconvertedAdapterFolder = "unconverted_adapter";

    private readonly PeftModel _model;
    private readonly TrainingDataset _train;
    private readonly TrainingDataset? _eval;
    private readonly TrainerOptions _options;
    private readonly List<TrainerCallback> _callbacks = [];
    private readonly EarlyStoppingCallback? _earlyStopping;
    private Dictionary<string, double>? _lastMetrics;
    private AdapterState? _initial;
    private StreamWriter? _log;
    private int _sessionStartStep;

    /// <summary>A trainer of <paramref name="model"/>'s adapter <see cref="TrainerOptions.AdapterName"/> on <paramref name="train"/>.</summary>
    public Trainer(PeftModel model, TrainingArguments args, TrainingDataset train, TrainingDataset? eval = null, TrainerOptions? options = null)
    {
        if (string.IsNullOrEmpty(args.OutputDir)) throw new TrainingArgumentsException("output_dir is not set (give --out or output_dir).");
        if (args.EvalStrategy != IntervalStrategy.No && eval is null)
            throw new TrainingArgumentsException($"eval_strategy is \"{TrainingArgumentsReader.StrategyName(args.EvalStrategy)}\" but there is no evaluation data (give --eval-data or eval_split).");
        _model = model;
        Arguments = args;
        _train = train;
        _eval = eval;
        _options = options ?? new TrainerOptions();
        if (args.EarlyStoppingPatience is int patience)
        {
            _earlyStopping = new EarlyStoppingCallback(patience, args.EarlyStoppingThreshold);
            _callbacks.Add(_earlyStopping);
        }
        int batches = (int)Math.Ceiling(train.Examples.Count / (double)args.PerDeviceTrainBatchSize);
        UpdatesPerEpoch = Math.Max(batches / args.GradientAccumulationSteps, 1);
        BatchesPerEpoch = batches;
        MaxSteps = args.MaxSteps > 0 ? args.MaxSteps : (int)Math.Ceiling(args.NumTrainEpochs * UpdatesPerEpoch);
        Epochs = args.MaxSteps > 0 ? args.MaxSteps / UpdatesPerEpoch + (args.MaxSteps % UpdatesPerEpoch > 0 ? 1 : 0) : (int)Math.Ceiling(args.NumTrainEpochs);
        State = new TrainerState
        {
            MaxSteps = MaxSteps, NumTrainEpochs = Epochs, TrainBatchSize = args.PerDeviceTrainBatchSize,
            LoggingSteps = Steps(args.LoggingSteps), EvalSteps = Steps(args.EvalSteps ?? args.LoggingSteps), SaveSteps = Steps(args.SaveSteps),
        };
    }

    /// <summary>The run's settings.</summary>
    public TrainingArguments Arguments { get; }

    /// <summary>The state (steps, epoch, log history, best metric).</summary>
    public TrainerState State { get; private set; }

    /// <summary>Micro-batches per epoch.</summary>
    public int BatchesPerEpoch { get; }

    /// <summary>Optimiser steps per epoch (transformers' num_update_steps_per_epoch).</summary>
    public int UpdatesPerEpoch { get; }

    /// <summary>The run's optimiser steps.</summary>
    public int MaxSteps { get; }

    /// <summary>The run's epochs.</summary>
    public int Epochs { get; }

    /// <summary>Receives a report after each step, log, evaluation and save.</summary>
    public IProgress<TrainingProgress>? Progress { get; set; }

    /// <summary>Adds a callback.</summary>
    public void AddCallback(TrainerCallback callback) => _callbacks.Add(callback);

    /// <summary>
    /// Trains. With <paramref name="resumeFrom"/> (a checkpoint folder), the adapter, optimiser,
    /// schedule, random state and data position come from it, after checking that this run's settings
    /// are the checkpoint's. When <paramref name="cancel"/> fires, the run stops after the current
    /// optimiser step and saves a checkpoint (status <see cref="TrainStatus.Cancelled"/>).
    /// </summary>
    public TrainResult Train(string? resumeFrom = null, CancellationToken cancel = default)
    {
        TrainingArguments args = Arguments;
        string output = args.OutputDir;
        Directory.CreateDirectory(output);
        CheckpointFolder.ClearLeftovers(output);
        JsonObject settings = RunSettings.Of(args, _options.RunIdentity);

        var clock = Stopwatch.StartNew();
        _initial?.Dispose();
        _initial = null;
        KeepInitialAdapter(output, resuming: resumeFrom is not null);
        TrainingPosition position = new();
        if (resumeFrom is not null)
        {
            position = Resume(resumeFrom, settings);
        }
        else
        {
            // transformers' set_seed(args.seed) before training: dropout and every other draw start from it.
            manual_seed(args.Seed);
        }

        string adapter = _options.AdapterName;
        if (args.Packing && _model.IsPromptLearning(adapter))
            throw new NotSupportedException($"packing is not supported with prompt learning (adapter '{adapter}' is {_model.PeftTypeOf(adapter)}: its virtual tokens would be shared by every packed document).");
        // The method's own part of training (AdaLoRA's budget schedule) starts; on resume its state follows,
        // before the optimiser takes the parameters (the state may replace them).
        _model.BeginTraining(adapter, MaxSteps);
        if (resumeFrom is not null)
        {
            using TrainingState? tunerState = TunerTrainingState.Read(resumeFrom);
            if (tunerState is not null) _model.ImportTrainingState(adapter, tunerState);
        }
        ParameterGroups groups = ParameterGroups.Of(_model);
        if (groups.All.Count == 0)
            throw new InvalidOperationException($"Adapter '{adapter}' has no trainable parameter (was it loaded for inference only?).");
        using var optimizer = new AdamWOptimizer(groups, args);
        LearningRateSchedule schedule = LearningRateSchedule.Create(args, MaxSteps);
        if (resumeFrom is not null) optimizer.Load(resumeFrom);
        optimizer.SetLearningRate(schedule.RateAt(State.GlobalStep));
        if (resumeFrom is not null) RngState.Load(resumeFrom);

        IGradientCheckpointing? checkpointing = _model.BaseModel as IGradientCheckpointing;
        if (checkpointing is not null) checkpointing.GradientCheckpointing = args.GradientCheckpointing;
        else if (args.GradientCheckpointing) throw new NotSupportedException($"gradient_checkpointing: {_model.BaseModel.GetType().Name} cannot recompute its layers.");
        _model.BaseModel.train();

        OpenLog(output, fresh: resumeFrom is null);
        var control = new TrainerControl();
        foreach (TrainerCallback c in _callbacks) c.OnTrainBegin(args, State, control);

        int ga = args.GradientAccumulationSteps;
        double lossSinceLog = position.LossSinceLog, totalLoss = position.TotalLoss;
        int lastLogged = position.LastLoggedStep;
        long totalBatches = position.TotalBatches;
        long tokensThisSession = 0;
        string? lastCheckpoint = resumeFrom;
        int lastSavedStep = resumeFrom is null ? -1 : State.GlobalStep;
        double stepLoss = 0;
        double? lastLoss = null;
        bool cancelled = false;
        int startEpoch = position.Epoch;
        _sessionStartStep = State.GlobalStep;
        try
        {
            for (int epoch = startEpoch; epoch < Epochs && !control.ShouldTrainingStop && !cancelled; epoch++)
            {
                int[] order = EpochOrder.For(_train.Examples.Count, epoch, args.Seed, args.Shuffle);
                if (epoch == startEpoch && resumeFrom is not null && position.Order.Length > 0 && !position.Order.SequenceEqual(order))
                    throw new InvalidOperationException($"--resume {resumeFrom}: the data order of epoch {epoch} differs from the checkpoint's (a different dataset, seed or shuffle).");
                int first = epoch == startEpoch ? position.NextBatch : 0;
                for (int batchIndex = first; batchIndex < BatchesPerEpoch; batchIndex++)
                {
                    totalBatches++;
                    var examples = order.Skip(batchIndex * args.PerDeviceTrainBatchSize).Take(args.PerDeviceTrainBatchSize).Select(i => _train.Examples[i]).ToList();
                    using (var scope = NewDisposeScope())
                    {
                        using Batch cpu = DataCollator.Collate(examples, _options.Task, _options.PadTokenId);
                        Batch batch = cpu.To(_options.Device);
                        Tensor logits = TaskForward.Logits(_model, batch, _options.Task);
                        Tensor loss = TaskForward.Loss(logits, batch, _options.Task);
                        // PEFT adds a method's regularisation (AdaLoRA's orthogonality) to the model's loss.
                        if (_model.RegularizationLoss(adapter) is { } regularization) loss = loss + regularization;
                        // transformers 4.44: each micro-batch's mean loss over gradient_accumulation_steps.
                        (loss / ga).backward();
                        stepLoss += loss.item<float>() / (double)ga;
                        // The logits are not needed any more: freed before the checkpointed layers are recomputed.
                        logits.Dispose();
                        checkpointing?.BackwardCheckpointedLayers();
                        tokensThisSession += batch.Tokens;
                        State.NumInputTokensSeen += batch.Tokens;
                    }

                    bool lastOfShortEpoch = BatchesPerEpoch <= ga && batchIndex + 1 == BatchesPerEpoch;
                    if (totalBatches % ga != 0 && !lastOfShortEpoch) continue;

                    double? gradNorm = null;
                    if (args.MaxGradNorm > 0)
                        gradNorm = nn.utils.clip_grad_norm_(groups.All.Select(p => p.Parameter), args.MaxGradNorm);
                    optimizer.Step();
                    // transformers' on_optimizer_step: the gradients are still there (PEFT's update_and_allocate reads them).
                    _model.AfterOptimizerStep(adapter, State.GlobalStep);
                    State.GlobalStep++;
                    optimizer.SetLearningRate(schedule.RateAt(State.GlobalStep));
                    optimizer.ZeroGrad();
                    NativeFinalizers.Run();
                    State.Epoch = epoch + (batchIndex + 1) / (double)BatchesPerEpoch;
                    lossSinceLog += stepLoss;
                    totalLoss += stepLoss;
                    stepLoss = 0;
                    foreach (TrainerCallback c in _callbacks) c.OnStepEnd(args, State, control);
                    if (State.GlobalStep >= MaxSteps) control.ShouldTrainingStop = true;

                    if (State.GlobalStep % State.LoggingSteps == 0)
                    {
                        double mean = lossSinceLog / (State.GlobalStep - lastLogged);
                        var entry = new JsonObject { ["epoch"] = State.Epoch, ["grad_norm"] = gradNorm, ["learning_rate"] = schedule.RateAt(State.GlobalStep), ["loss"] = mean, ["step"] = State.GlobalStep };
                        if (gradNorm is null) entry.Remove("grad_norm");
                        lastLoss = mean;
                        lossSinceLog = 0;
                        lastLogged = State.GlobalStep;
                        Log(entry, control);
                    }
                    bool endOfEpoch = batchIndex + 1 == BatchesPerEpoch;
                    if (args.EvalStrategy == IntervalStrategy.Steps && State.GlobalStep % State.EvalSteps == 0
                        || args.EvalStrategy == IntervalStrategy.Epoch && endOfEpoch)
                        Evaluate(control, clock, tokensThisSession);
                    cancelled = cancel.IsCancellationRequested;
                    bool save = cancelled
                                || (args.SaveStrategy == IntervalStrategy.Steps && State.GlobalStep % State.SaveSteps == 0)
                                || (args.SaveStrategy == IntervalStrategy.Epoch && endOfEpoch)
                                || (args.SaveStrategy != IntervalStrategy.No && control.ShouldTrainingStop);
                    if (save && lastSavedStep != State.GlobalStep)
                    {
                        var here = new TrainingPosition
                        {
                            Epoch = endOfEpoch ? epoch + 1 : epoch, NextBatch = endOfEpoch ? 0 : batchIndex + 1, TotalBatches = totalBatches,
                            LossSinceLog = lossSinceLog, TotalLoss = totalLoss, LastLoggedStep = lastLogged, Order = endOfEpoch ? [] : order,
                            EarlyStoppingCounter = _earlyStopping?.PatienceCounter ?? 0, EarlyStoppingBest = _earlyStopping?.Best,
                        };
                        lastCheckpoint = SaveCheckpoint(optimizer, schedule, here, settings, control);
                        lastSavedStep = State.GlobalStep;
                    }
                    Report(TrainingPhase.Step, lastLoss, schedule.RateAt(State.GlobalStep), clock, tokensThisSession, null, null);
                    if (control.ShouldTrainingStop || cancelled) break;
                }
            }
        }
        finally
        {
            _model.BaseModel.eval();
        }

        if (cancelled)
        {
            WriteState(output);
            Report(TrainingPhase.End, lastLoss, schedule.RateAt(State.GlobalStep), clock, tokensThisSession, $"cancelled at step {State.GlobalStep}; resume from {lastCheckpoint}", null);
            foreach (TrainerCallback c in _callbacks) c.OnTrainEnd(args, State, control);
            CloseLog();
            ReleaseInitial();
            return new TrainResult(TrainStatus.Cancelled, State.GlobalStep, totalLoss / Math.Max(State.GlobalStep, 1), clock.Elapsed, lastCheckpoint, output);
        }

        if (args.LoadBestModelAtEnd && State.BestModelCheckpoint is { } best && Directory.Exists(best)) ReloadAdapter(best);
        double trainLoss = totalLoss / Math.Max(State.GlobalStep, 0.001);
        var summary = new JsonObject
        {
            ["epoch"] = State.Epoch, ["step"] = State.GlobalStep, ["total_flos"] = 0.0, ["train_loss"] = trainLoss,
            ["train_runtime"] = Math.Round(clock.Elapsed.TotalSeconds, 4),
            ["train_samples_per_second"] = Math.Round(MaxSteps * args.PerDeviceTrainBatchSize * ga / Math.Max(clock.Elapsed.TotalSeconds, 1e-9), 3),
            ["train_steps_per_second"] = Math.Round(State.GlobalStep / Math.Max(clock.Elapsed.TotalSeconds, 1e-9), 3),
        };
        Log(summary, control);
        SaveAdapter(output, checkpoint: false);
        WriteState(output);
        if (_options.WriteCurves) TrainingCurves.Write(Path.Combine(output, TrainingCurves.FileName), State.LogHistory);
        Report(TrainingPhase.End, lastLoss, schedule.RateAt(State.GlobalStep), clock, tokensThisSession, $"trained {State.GlobalStep} steps; adapter in {output}", null);
        foreach (TrainerCallback c in _callbacks) c.OnTrainEnd(args, State, control);
        CloseLog();
        ReleaseInitial();
        return new TrainResult(TrainStatus.Completed, State.GlobalStep, trainLoss, clock.Elapsed, lastCheckpoint, output);
    }

    /// <summary>Evaluates the model on the evaluation data (eval mode, no autograd).</summary>
    public Dictionary<string, double> Evaluate(CancellationToken cancel = default) =>
        _eval is null ? throw new InvalidOperationException("No evaluation data.")
            : Evaluator.Evaluate(_model, _eval, _options.Task, Arguments.PerDeviceEvalBatchSize, _options.PadTokenId, _options.Device, cancel);

    private void Evaluate(TrainerControl control, Stopwatch clock, long tokens)
    {
        Dictionary<string, double> metrics = Evaluate();
        _lastMetrics = metrics;
        var entry = new JsonObject { ["epoch"] = State.Epoch };
        foreach ((string k, double v) in metrics) entry[k] = v;
        entry["step"] = State.GlobalStep;
        Log(entry, control);
        foreach (TrainerCallback c in _callbacks) c.OnEvaluate(Arguments, State, control, metrics);
        Report(TrainingPhase.Evaluate, null, 0, clock, tokens, string.Join(", ", metrics.Select(m => string.Create(CultureInfo.InvariantCulture, $"{m.Key} {m.Value:G5}"))), metrics);
    }

    private bool TracksBest => Arguments.MetricForBestModel is not null || Arguments.LoadBestModelAtEnd || Arguments.EarlyStoppingPatience is not null;

    private string SaveCheckpoint(AdamWOptimizer optimizer, LearningRateSchedule schedule, TrainingPosition position, JsonObject settings, TrainerControl control)
    {
        string output = Arguments.OutputDir;
        string target = CheckpointFolder.PathOf(output, State.GlobalStep);
        // transformers updates the best metric when saving, from the latest evaluation.
        if (TracksBest && _lastMetrics is not null && _lastMetrics.TryGetValue(BestMetric.Key(Arguments), out double metric))
        {
            bool greater = BestMetric.GreaterIsBetter(Arguments);
            if (State.BestMetric is null || (greater ? metric > State.BestMetric : metric < State.BestMetric))
            {
                State.BestMetric = metric;
                State.BestModelCheckpoint = target;
            }
        }
        string written = CheckpointFolder.Write(output, State.GlobalStep, folder =>
        {
            SaveAdapter(folder, checkpoint: true);
            using (TrainingState? tunerState = _model.ExportTrainingState(_options.AdapterName))
                if (tunerState is not null) TunerTrainingState.Save(folder, tunerState);
            optimizer.Save(folder);
            AtomicFile.WriteAllText(Path.Combine(folder, "scheduler.json"), new JsonObject
            {
                ["lr_scheduler_type"] = schedule.Type, ["base_lrs"] = new JsonArray(schedule.InitialRate), ["last_epoch"] = State.GlobalStep,
                ["last_lr"] = new JsonArray(schedule.RateAt(State.GlobalStep)), ["num_warmup_steps"] = schedule.WarmupSteps, ["num_training_steps"] = schedule.TotalSteps,
            }.ToJsonString(CheckpointJson.Options));
            RngState.Save(folder);
            AtomicFile.WriteAllText(Path.Combine(folder, TrainingPosition.FileName), position.ToJson().ToJsonString(CheckpointJson.Options));
            AtomicFile.WriteAllText(Path.Combine(folder, RunSettings.FileName), settings.ToJsonString(CheckpointJson.Options));
            AtomicFile.WriteAllText(Path.Combine(folder, "training_args.json"), TrainingArgumentsReader.ToJson(Arguments).ToJsonString(CheckpointJson.Options));
            AtomicFile.WriteAllText(Path.Combine(folder, TrainerState.FileName), State.ToJson().ToJsonString(CheckpointJson.Options));
        });
        if (Arguments.SaveTotalLimit is int limit) CheckpointFolder.Rotate(output, limit, State.BestModelCheckpoint);
        foreach (TrainerCallback c in _callbacks) c.OnSave(Arguments, State, control, written);
        Progress?.Report(new TrainingProgress(TrainingPhase.Save, State.GlobalStep, MaxSteps, State.Epoch, null, 0, 0, TimeSpan.Zero, null, "saved " + written, null));
        return written;
    }

    private TrainingPosition Resume(string checkpoint, JsonObject settings)
    {
        if (!Directory.Exists(checkpoint)) throw new DirectoryNotFoundException($"--resume: checkpoint {checkpoint} not found.");
        JsonObject saved = CheckpointJson.Read(Path.Combine(checkpoint, RunSettings.FileName));
        RunSettings.Check(settings, saved, checkpoint);
        TrainerState state = TrainerState.Read(Path.Combine(checkpoint, TrainerState.FileName));
        state.MaxSteps = MaxSteps;
        state.NumTrainEpochs = Epochs;
        state.TrainBatchSize = Arguments.PerDeviceTrainBatchSize;
        state.LoggingSteps = State.LoggingSteps;
        state.EvalSteps = State.EvalSteps;
        state.SaveSteps = State.SaveSteps;
        State = state;
        TrainingPosition position = TrainingPosition.Read(Path.Combine(checkpoint, TrainingPosition.FileName));
        if (_earlyStopping is not null)
        {
            _earlyStopping.PatienceCounter = position.EarlyStoppingCounter;
            _earlyStopping.Best = position.EarlyStoppingBest;
        }
        ReloadAdapter(checkpoint);
        return position;
    }

    // The checkpoint's adapter replaces the model's (trainable, in training mode).
    private void ReloadAdapter(string checkpoint)
    {
        string name = _options.AdapterName;
        string unconverted = Path.Combine(checkpoint, UnconvertedAdapterFolder);
        string folder = Directory.Exists(unconverted) ? unconverted : AdapterFolder.AdapterDirectory(checkpoint, name);
        _model.DeleteAdapter(name);
        // As PEFT's load_adapter(is_trainable=True): the config's inference_mode becomes false, so the tuner's
        // trainable rule keeps it trainable; it is the only adapter, hence the active one.
        _model.LoadAdapter(folder, name, isTrainable: true);
    }

    // The adapter in PEFT's layout, with base_model_name_or_path and the model card. An adapter whose initialisation
    // changed the base (PiSSA, OLoRA) is saved converted for the untouched base; a checkpoint also keeps it as trained
    // (against the residual base), which is what a resume continues from.
    private void SaveAdapter(string folder, bool checkpoint)
    {
        string name = _options.AdapterName;
        var options = new AdapterSaveOptions { BaseModelNameOrPath = _options.BaseModelNameOrPath, WriteModelCard = true, TrainingDetails = CardLines() };
        if (_initial is null)
        {
            _model.SavePretrained(folder, [name], options);
            return;
        }
        _model.SavePretrained(folder, _initial, [name], options);
        if (checkpoint)
        {
            using AdapterState trained = _model.ExportAdapter(name);
            AdapterFolder.Write(Path.Combine(folder, UnconvertedAdapterFolder), trained, prefixKeys: true, _options.BaseModelNameOrPath);
        }
    }

    // PiSSA / OLoRA: the adapter right after its initialisation, kept in output_dir (PEFT's
    // path_initial_model_for_weight_conversion); on resume the setup must have rebuilt the same residual base.
    private void KeepInitialAdapter(string output, bool resuming)
    {
        string name = _options.AdapterName;
        if (!_model.ChangedBaseWeights(name)) return;
        _initial = _model.ExportAdapter(name);
        string folder = Path.Combine(output, InitialAdapterFolder);
        if (!resuming)
        {
            AdapterFolder.Write(folder, _initial, prefixKeys: true, _options.BaseModelNameOrPath);
            return;
        }
        if (!Directory.Exists(folder))
            throw new InvalidOperationException($"--resume: adapter '{name}' changed the base weights when it was initialised (its residual base), but {folder}, the initial adapter the run saved, is missing.");
        using AdapterState saved = AdapterFolder.Read(folder, name);
        foreach ((string key, Tensor now) in _initial.Tensors)
            if (!saved.Tensors.TryGetValue(key, out Tensor? then) || !then.shape.SequenceEqual(now.shape) || !Same(then, now))
                throw new InvalidOperationException($"--resume: adapter '{name}' initialised now differs from the run's initial adapter ({folder}, tensor '{key}'), so the base weights' residual is not the one it trained against; give the same model, adapter config and seed.");
    }

    private static bool Same(Tensor a, Tensor b)
    {
        using Tensor equal = a.eq(b).all();
        return equal.item<bool>();
    }

    private List<string> CardLines()
    {
        TrainingArguments a = Arguments;
        CultureInfo c = CultureInfo.InvariantCulture;
        var lines = new List<string>
        {
            string.Create(c, $"learning_rate: {a.LearningRate}"), string.Create(c, $"train_batch_size: {a.PerDeviceTrainBatchSize}"),
            string.Create(c, $"gradient_accumulation_steps: {a.GradientAccumulationSteps}"), string.Create(c, $"seed: {a.Seed}"),
            $"optimizer: adamw_torch with betas=({a.AdamBeta1.ToString(c)}, {a.AdamBeta2.ToString(c)}) and epsilon={a.AdamEpsilon.ToString(c)}",
            $"lr_scheduler_type: {a.LrSchedulerType}", string.Create(c, $"training_steps: {State.GlobalStep} of {MaxSteps}"),
        };
        if (State.LogHistory.LastOrDefault(e => e.ContainsKey("loss")) is { } last)
            lines.Add(string.Create(c, $"last logged training loss: {JsonNumber.Get(last["loss"]!):G6}"));
        return lines;
    }

    private void WriteState(string output) =>
        AtomicFile.WriteAllText(Path.Combine(output, TrainerState.FileName), State.ToJson().ToJsonString(CheckpointJson.Options));

    private void Log(JsonObject entry, TrainerControl control)
    {
        State.LogHistory.Add(entry);
        _log?.WriteLine(entry.ToJsonString());
        _log?.Flush();
        foreach (TrainerCallback c in _callbacks) c.OnLog(Arguments, State, control, entry);
        var numbers = entry.Where(p => JsonNumber.Is(p.Value)).ToDictionary(p => p.Key, p => JsonNumber.Get(p.Value!));
        Progress?.Report(new TrainingProgress(TrainingPhase.Log, State.GlobalStep, MaxSteps, State.Epoch, numbers.GetValueOrDefault("loss", double.NaN),
            numbers.GetValueOrDefault("learning_rate", double.NaN), 0, TimeSpan.Zero, null, entry.ToJsonString(), numbers));
    }

    // A resumed run's log starts from the checkpoint's history: entries logged after it (before a kill) are dropped.
    private void OpenLog(string output, bool fresh)
    {
        string path = Path.Combine(output, LogFile);
        var text = new StringBuilder();
        if (!fresh) foreach (JsonObject e in State.LogHistory) text.Append(e.ToJsonString()).Append('\n');
        AtomicFile.WriteAllText(path, text.ToString());
        _log = new StreamWriter(new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read), new UTF8Encoding(false));
    }

    private void ReleaseInitial()
    {
        _initial?.Dispose();
        _initial = null;
    }

    private void CloseLog()
    {
        _log?.Dispose();
        _log = null;
    }

    private void Report(TrainingPhase phase, double? loss, double rate, Stopwatch clock, long tokens, string? message, IReadOnlyDictionary<string, double>? metrics)
    {
        if (Progress is null) return;
        double seconds = clock.Elapsed.TotalSeconds;
        TimeSpan? remaining = null;
        if (phase == TrainingPhase.Step && State.GlobalStep > 0 && seconds > 0) remaining = TimeSpan.FromSeconds(seconds / Math.Max(1, State.GlobalStep - _sessionStartStep) * (MaxSteps - State.GlobalStep));
        Progress.Report(new TrainingProgress(phase, State.GlobalStep, MaxSteps, State.Epoch, loss, rate, seconds > 0 ? tokens / seconds : 0, clock.Elapsed, remaining, message, metrics));
    }

    private int Steps(double value) => value < 1 ? Math.Max(1, (int)Math.Ceiling(MaxSteps * value)) : (int)value;
}

