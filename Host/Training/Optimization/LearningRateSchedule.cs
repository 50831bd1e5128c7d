using System.Text.Json.Nodes;
using PeftHost.Training.Arguments;

namespace PeftHost.Training.Optimization;

/// <summary>
/// transformers' learning-rate schedules (optimization.py): a multiplier of the initial rate as a
/// function of the optimiser steps taken so far, as <c>LambdaLR</c> applies it. Step k of the
/// optimiser runs at <c>lr · Factor(k)</c>; after it the scheduler steps to <c>Factor(k + 1)</c>.
/// </summary>
public sealed class LearningRateSchedule
{
    /// <summary>The lr_scheduler_type values served.</summary>
    public static IReadOnlyList<string> Types { get; } =
        ["linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup", "inverse_sqrt", "cosine_with_min_lr", "warmup_stable_decay"];

    private static readonly Dictionary<string, string[]> Kwargs = new()
    {
        ["linear"] = [], ["constant"] = [], ["constant_with_warmup"] = [],
        ["cosine"] = ["num_cycles"], ["cosine_with_restarts"] = ["num_cycles"], ["polynomial"] = ["lr_end", "power"],
        // transformers' get_scheduler passes no kwargs to inverse_sqrt (its timescale is warmup or 10000).
        ["inverse_sqrt"] = [], ["cosine_with_min_lr"] = ["num_cycles", "min_lr", "min_lr_rate"],
        ["warmup_stable_decay"] = ["num_stable_steps", "num_decay_steps", "min_lr_ratio", "num_cycles"],
    };

    private readonly Func<int, double> _factor;

    private LearningRateSchedule(string type, double initialRate, int warmup, int total, Func<int, double> factor)
    {
        Type = type;
        InitialRate = initialRate;
        WarmupSteps = warmup;
        TotalSteps = total;
        _factor = factor;
    }

    /// <summary>lr_scheduler_type.</summary>
    public string Type { get; }

    /// <summary>The optimiser's initial rate.</summary>
    public double InitialRate { get; }

    /// <summary>Warm-up steps (warmup_steps, else ceil(total · warmup_ratio)).</summary>
    public int WarmupSteps { get; }

    /// <summary>The run's optimiser steps.</summary>
    public int TotalSteps { get; }

    /// <summary>The multiplier after <paramref name="step"/> scheduler steps.</summary>
    public double Factor(int step) => _factor(step);

    /// <summary>The rate the optimiser uses for its step number <paramref name="step"/> (0-based).</summary>
    public double RateAt(int step) => InitialRate * _factor(step);

    /// <summary>transformers' <c>get_warmup_steps</c>.</summary>
    public static int WarmupFor(TrainingArguments args, int totalSteps) =>
        args.WarmupSteps > 0 ? args.WarmupSteps : (int)Math.Ceiling(totalSteps * args.WarmupRatio);

    /// <summary>Checks that lr_scheduler_kwargs hold only what the schedule takes.</summary>
    public static void CheckKwargs(string type, JsonObject kwargs, string source)
    {
        string[] allowed = Kwargs[type];
        foreach ((string key, JsonNode? value) in kwargs)
        {
            if (!allowed.Contains(key))
                throw new TrainingArgumentsException($"{source}: lr_scheduler_kwargs.{key} is not an argument of the {type} schedule (it takes {(allowed.Length == 0 ? "none" : string.Join(", ", allowed))}).");
            if (value is not JsonValue v || v.GetValueKind() != System.Text.Json.JsonValueKind.Number)
                throw new TrainingArgumentsException($"{source}: lr_scheduler_kwargs.{key} must be a number, got {value?.ToJsonString() ?? "null"}.");
        }
        if (type == "cosine_with_min_lr" && (kwargs.ContainsKey("min_lr") == kwargs.ContainsKey("min_lr_rate")))
            throw new TrainingArgumentsException($"{source}: the cosine_with_min_lr schedule needs exactly one of lr_scheduler_kwargs.min_lr and min_lr_rate.");
        if (type == "warmup_stable_decay" && !(kwargs.ContainsKey("num_stable_steps") && kwargs.ContainsKey("num_decay_steps")))
            throw new TrainingArgumentsException($"{source}: the warmup_stable_decay schedule needs lr_scheduler_kwargs.num_stable_steps and num_decay_steps.");
    }

    /// <summary>transformers' <c>get_scheduler(lr_scheduler_type, optimizer, num_warmup_steps, num_training_steps, scheduler_specific_kwargs)</c>.</summary>
    public static LearningRateSchedule Create(TrainingArguments args, int totalSteps)
    {
        string type = args.LrSchedulerType;
        int warmup = WarmupFor(args, totalSteps);
        double lr = args.LearningRate;
        JsonObject k = args.LrSchedulerKwargs;
        double Kw(string name, double fallback) => JsonNumber.GetOrNull(k[name]) ?? fallback;
        double Warm(int step) => step / (double)Math.Max(1, warmup);
        Func<int, double> factor = type switch
        {
            // get_scheduler gives "constant" no warm-up.
            "constant" => _ => 1.0,
            "constant_with_warmup" => s => s < warmup ? s / Math.Max(1.0, warmup) : 1.0,
            "linear" => s => s < warmup ? Warm(s) : Math.Max(0.0, (totalSteps - s) / (double)Math.Max(1, totalSteps - warmup)),
            "cosine" => Cosine(warmup, totalSteps, Kw("num_cycles", 0.5), 0.0),
            "cosine_with_min_lr" => Cosine(warmup, totalSteps, Kw("num_cycles", 0.5), k.ContainsKey("min_lr") ? Kw("min_lr", 0) / lr : Kw("min_lr_rate", 0)),
            "cosine_with_restarts" => s =>
            {
                if (s < warmup) return Warm(s);
                double progress = (s - warmup) / (double)Math.Max(1, totalSteps - warmup);
                if (progress >= 1.0) return 0.0;
                // transformers passes num_cycles as an int here.
                double cycles = Math.Floor(Kw("num_cycles", 1));
                return Math.Max(0.0, 0.5 * (1.0 + Math.Cos(Math.PI * PyMod(cycles * progress, 1.0))));
            },
            "polynomial" => Polynomial(warmup, totalSteps, Kw("lr_end", 1e-7), Kw("power", 1.0), lr),
            "inverse_sqrt" => InverseSqrt(warmup, warmup > 0 ? warmup : 10_000),
            "warmup_stable_decay" => Wsd(warmup, (int)Kw("num_stable_steps", 0), (int)Kw("num_decay_steps", 0), Kw("num_cycles", 0.5), Kw("min_lr_ratio", 0)),
            _ => throw new TrainingArgumentsException($"lr_scheduler_type '{type}' is not served (served: {string.Join(", ", Types)})."),
        };
        return new LearningRateSchedule(type, lr, warmup, totalSteps, factor);
    }

    private static Func<int, double> Cosine(int warmup, int total, double cycles, double minRate) => s =>
    {
        if (s < warmup) return s / (double)Math.Max(1, warmup);
        double progress = (s - warmup) / (double)Math.Max(1, total - warmup);
        double f = 0.5 * (1.0 + Math.Cos(Math.PI * cycles * 2.0 * progress));
        return Math.Max(0.0, f * (1 - minRate) + minRate);
    };

    private static Func<int, double> Polynomial(int warmup, int total, double lrEnd, double power, double lrInit) => s =>
    {
        if (s < warmup) return s / (double)Math.Max(1, warmup);
        if (s > total) return lrEnd / lrInit;
        double range = lrInit - lrEnd;
        int decaySteps = total - warmup;
        double remaining = 1 - (s - warmup) / (double)decaySteps;
        return (range * Math.Pow(remaining, power) + lrEnd) / lrInit;
    };

    private static Func<int, double> InverseSqrt(int warmup, double timescale) => s =>
    {
        if (s < warmup) return s / (double)Math.Max(1, warmup);
        double shift = timescale - warmup;
        return 1.0 / Math.Sqrt((s + shift) / timescale);
    };

    private static Func<int, double> Wsd(int warmup, int stable, int decay, double cycles, double minRatio) => s =>
    {
        if (s < warmup) return s / (double)Math.Max(1, warmup);
        if (s < warmup + stable) return 1.0;
        if (s < warmup + stable + decay)
        {
            double progress = (s - warmup - stable) / (double)Math.Max(1, decay);
            double value = Math.Max(0.0, 0.5 * (1.0 + Math.Cos(Math.PI * cycles * 2.0 * progress)));
            return (1.0 - minRatio) * value + minRatio;
        }
        return minRatio;
    };

    // Python's % (the sign of the divisor).
    private static double PyMod(double a, double b) => a - b * Math.Floor(a / b);
}
