using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using PeftHost.Training.Optimization;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace PeftHost.Training.Arguments;

/// <summary>
/// Reads <see cref="TrainingArguments"/> from a JSON or YAML file and <c>field=value</c> overrides,
/// by Hugging Face's field names. A field transformers or TRL has but PeftHost does not support is an
/// error saying so; a field nobody has is an error naming it; a value of the wrong type or range is
/// an error naming the source, the field and what was expected.
/// </summary>
public static class TrainingArgumentsReader
{
    private delegate TrainingArguments Setter(TrainingArguments a, JsonNode? v, Field f);

    private readonly record struct Field(string Source, string Name);

    private static readonly Dictionary<string, Setter> Fields = new(StringComparer.Ordinal)
    {
        ["output_dir"] = (a, v, f) => a with { OutputDir = Str(v, f) },
        ["num_train_epochs"] = (a, v, f) => a with { NumTrainEpochs = Positive(Num(v, f), f) },
        ["max_steps"] = (a, v, f) => a with { MaxSteps = Int(v, f) },
        ["per_device_train_batch_size"] = (a, v, f) => a with { PerDeviceTrainBatchSize = PositiveInt(v, f) },
        ["per_device_eval_batch_size"] = (a, v, f) => a with { PerDeviceEvalBatchSize = PositiveInt(v, f) },
        ["gradient_accumulation_steps"] = (a, v, f) => a with { GradientAccumulationSteps = PositiveInt(v, f) },
        ["learning_rate"] = (a, v, f) => a with { LearningRate = NonNegative(Num(v, f), f) },
        ["weight_decay"] = (a, v, f) => a with { WeightDecay = NonNegative(Num(v, f), f) },
        ["adam_beta1"] = (a, v, f) => a with { AdamBeta1 = Fraction(Num(v, f), f) },
        ["adam_beta2"] = (a, v, f) => a with { AdamBeta2 = Fraction(Num(v, f), f) },
        ["adam_epsilon"] = (a, v, f) => a with { AdamEpsilon = Positive(Num(v, f), f) },
        ["optim"] = (a, v, f) => a with { Optim = OneOf(Str(v, f), f, "adamw_torch") },
        ["max_grad_norm"] = (a, v, f) => a with { MaxGradNorm = NonNegative(Num(v, f), f) },
        ["lr_scheduler_type"] = (a, v, f) => a with { LrSchedulerType = OneOf(Str(v, f), f, [.. LearningRateSchedule.Types]) },
        ["lr_scheduler_kwargs"] = (a, v, f) => a with { LrSchedulerKwargs = Obj(v, f) },
        ["warmup_steps"] = (a, v, f) => a with { WarmupSteps = NonNegativeInt(v, f) },
        ["warmup_ratio"] = (a, v, f) => a with { WarmupRatio = Fraction(Num(v, f), f) },
        ["logging_steps"] = (a, v, f) => a with { LoggingSteps = Positive(Num(v, f), f) },
        ["eval_strategy"] = (a, v, f) => a with { EvalStrategy = Strategy(v, f) },
        ["eval_steps"] = (a, v, f) => a with { EvalSteps = v is null ? null : Positive(Num(v, f), f) },
        ["save_strategy"] = (a, v, f) => a with { SaveStrategy = Strategy(v, f) },
        ["save_steps"] = (a, v, f) => a with { SaveSteps = Positive(Num(v, f), f) },
        ["save_total_limit"] = (a, v, f) => a with { SaveTotalLimit = v is null ? null : PositiveInt(v, f) },
        ["load_best_model_at_end"] = (a, v, f) => a with { LoadBestModelAtEnd = Bool(v, f) },
        ["metric_for_best_model"] = (a, v, f) => a with { MetricForBestModel = v is null ? null : Str(v, f) },
        ["greater_is_better"] = (a, v, f) => a with { GreaterIsBetter = v is null ? null : Bool(v, f) },
        ["early_stopping_patience"] = (a, v, f) => a with { EarlyStoppingPatience = v is null ? null : PositiveInt(v, f) },
        ["early_stopping_threshold"] = (a, v, f) => a with { EarlyStoppingThreshold = NonNegative(Num(v, f), f) },
        ["seed"] = (a, v, f) => a with { Seed = Int(v, f) },
        ["gradient_checkpointing"] = (a, v, f) => a with { GradientCheckpointing = Bool(v, f) },
        ["max_length"] = (a, v, f) => a with { MaxLength = PositiveInt(v, f) },
        ["max_seq_length"] = (a, v, f) => a with { MaxLength = PositiveInt(v, f) },
        ["packing"] = (a, v, f) => a with { Packing = Bool(v, f) },
        ["completion_only_loss"] = (a, v, f) => a with { CompletionOnlyLoss = v is null || Bool(v, f) },
        ["assistant_only_loss"] = (a, v, f) => a with { AssistantOnlyLoss = Bool(v, f) },
        ["shuffle"] = (a, v, f) => a with { Shuffle = Bool(v, f) },
        ["eval_split"] = (a, v, f) => a with { EvalSplit = EvalFraction(Num(v, f), f) },
    };

    /// <summary>Every field name accepted (Hugging Face's, plus <c>shuffle</c> and <c>eval_split</c>).</summary>
    public static IReadOnlyCollection<string> AcceptedFields => Fields.Keys;

    /// <summary>Reads a config file: <c>.json</c>, or <c>.yaml</c> / <c>.yml</c>.</summary>
    /// <exception cref="TrainingArgumentsException">The file is malformed or a field is unknown, unsupported or invalid.</exception>
    public static JsonObject ReadFile(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Training config {path} not found.", path);
        string text = File.ReadAllText(path);
        string ext = Path.GetExtension(path).ToLowerInvariant();
        if (ext is ".yaml" or ".yml") return ParseYaml(text, path);
        if (ext != ".json") throw new TrainingArgumentsException($"{path}: a training config is .json, .yaml or .yml.");
        try
        {
            return JsonNode.Parse(text) as JsonObject ?? throw new TrainingArgumentsException($"{path}: the config is not a JSON object.");
        }
        catch (JsonException e)
        {
            throw new TrainingArgumentsException($"{path}: invalid JSON at line {e.LineNumber + 1}: {e.Message}");
        }
    }

    /// <summary>
    /// Applies <c>field=value</c> overrides (the value read as JSON when it parses, else as a string) to
    /// a config object; returns a new object.
    /// </summary>
    public static JsonObject ApplyOverrides(JsonObject config, IEnumerable<string> overrides)
    {
        var result = (JsonObject)config.DeepClone();
        foreach (string o in overrides)
        {
            int eq = o.IndexOf('=');
            if (eq <= 0) throw new TrainingArgumentsException($"--set '{o}': expected field=value (e.g. --set learning_rate=2e-4).");
            string name = o[..eq].Trim(), text = o[(eq + 1)..];
            JsonNode? value;
            try { value = JsonNode.Parse(text); }
            catch (JsonException) { value = JsonValue.Create(text); }
            result[name] = value;
        }
        return result;
    }

    /// <summary>Binds a config object, checking every field; <paramref name="source"/> names it in errors.</summary>
    public static TrainingArguments Parse(JsonObject config, string source)
    {
        var args = new TrainingArguments();
        foreach ((string name, JsonNode? value) in config)
        {
            if (Fields.TryGetValue(name, out Setter? set))
            {
                args = set(args, value, new Field(source, name));
                continue;
            }
            if (HuggingFaceFields.Unsupported.Contains(name))
                throw new TrainingArgumentsException($"{source}: field '{name}' is a Hugging Face training argument that PeftHost does not support{HuggingFaceFields.Hint(name)}.");
            string? near = Fields.Keys.OrderBy(k => Distance(k, name)).FirstOrDefault(k => Distance(k, name) <= 2);
            throw new TrainingArgumentsException($"{source}: unknown field '{name}'{(near is null ? "" : $" (did you mean '{near}'?)")}.");
        }
        Validate(args, source);
        return args;
    }

    /// <summary>The arguments as a config object by Hugging Face's names (what a checkpoint records).</summary>
    public static JsonObject ToJson(TrainingArguments a) => new()
    {
        ["output_dir"] = a.OutputDir, ["num_train_epochs"] = a.NumTrainEpochs, ["max_steps"] = a.MaxSteps,
        ["per_device_train_batch_size"] = a.PerDeviceTrainBatchSize, ["per_device_eval_batch_size"] = a.PerDeviceEvalBatchSize,
        ["gradient_accumulation_steps"] = a.GradientAccumulationSteps, ["learning_rate"] = a.LearningRate, ["weight_decay"] = a.WeightDecay,
        ["adam_beta1"] = a.AdamBeta1, ["adam_beta2"] = a.AdamBeta2, ["adam_epsilon"] = a.AdamEpsilon, ["optim"] = a.Optim,
        ["max_grad_norm"] = a.MaxGradNorm, ["lr_scheduler_type"] = a.LrSchedulerType, ["lr_scheduler_kwargs"] = a.LrSchedulerKwargs.DeepClone(),
        ["warmup_steps"] = a.WarmupSteps, ["warmup_ratio"] = a.WarmupRatio, ["logging_steps"] = a.LoggingSteps,
        ["eval_strategy"] = StrategyName(a.EvalStrategy), ["eval_steps"] = a.EvalSteps, ["save_strategy"] = StrategyName(a.SaveStrategy),
        ["save_steps"] = a.SaveSteps, ["save_total_limit"] = a.SaveTotalLimit, ["load_best_model_at_end"] = a.LoadBestModelAtEnd,
        ["metric_for_best_model"] = a.MetricForBestModel, ["greater_is_better"] = a.GreaterIsBetter,
        ["early_stopping_patience"] = a.EarlyStoppingPatience, ["early_stopping_threshold"] = a.EarlyStoppingThreshold, ["seed"] = a.Seed,
        ["gradient_checkpointing"] = a.GradientCheckpointing, ["max_length"] = a.MaxLength, ["packing"] = a.Packing,
        ["completion_only_loss"] = a.CompletionOnlyLoss, ["assistant_only_loss"] = a.AssistantOnlyLoss, ["shuffle"] = a.Shuffle,
        ["eval_split"] = a.EvalSplit,
    };

    /// <summary>"no", "steps" or "epoch".</summary>
    public static string StrategyName(IntervalStrategy s) => s.ToString().ToLowerInvariant();

    private static void Validate(TrainingArguments a, string source)
    {
        if (a.LrSchedulerType == "polynomial")
        {
            double end = JsonNumber.GetOrNull(a.LrSchedulerKwargs["lr_end"]) ?? 1e-7;
            if (!(a.LearningRate > end))
                throw new TrainingArgumentsException($"{source}: lr_scheduler_type polynomial needs learning_rate ({a.LearningRate}) above lr_scheduler_kwargs.lr_end ({end}).");
        }
        LearningRateSchedule.CheckKwargs(a.LrSchedulerType, a.LrSchedulerKwargs, source);
        if (a.LoadBestModelAtEnd)
        {
            if (a.EvalStrategy == IntervalStrategy.No)
                throw new TrainingArgumentsException($"{source}: load_best_model_at_end needs an eval_strategy other than \"no\".");
            if (a.SaveStrategy != a.EvalStrategy)
                throw new TrainingArgumentsException($"{source}: load_best_model_at_end needs save_strategy and eval_strategy to match (save_strategy \"{StrategyName(a.SaveStrategy)}\", eval_strategy \"{StrategyName(a.EvalStrategy)}\").");
            double evalSteps = a.EvalSteps ?? a.LoggingSteps;
            if (a.EvalStrategy == IntervalStrategy.Steps && a.SaveSteps >= 1 && evalSteps >= 1 && a.SaveSteps % evalSteps != 0)
                throw new TrainingArgumentsException($"{source}: load_best_model_at_end needs save_steps ({a.SaveSteps}) to be a multiple of eval_steps ({evalSteps}).");
        }
        if (a.EarlyStoppingPatience is not null && a.EvalStrategy == IntervalStrategy.No)
            throw new TrainingArgumentsException($"{source}: early_stopping_patience needs an eval_strategy other than \"no\" (it counts evaluations).");
        if (a.MaxSteps == 0 || a.MaxSteps < -1)
            throw new TrainingArgumentsException($"{source}: field 'max_steps' must be positive, or -1 to train num_train_epochs epochs; got {a.MaxSteps}.");
    }

    private static JsonObject ParseYaml(string text, string path)
    {
        var yaml = new YamlStream();
        try
        {
            yaml.Load(new StringReader(text));
        }
        catch (YamlException e)
        {
            throw new TrainingArgumentsException($"{path}: invalid YAML at line {e.Start.Line}: {e.Message}");
        }
        if (yaml.Documents.Count == 0) return [];
        return ToJson(yaml.Documents[0].RootNode, path) as JsonObject
            ?? throw new TrainingArgumentsException($"{path}: the config is not a mapping of field: value.");
    }

    // YAML's core schema for plain scalars (null, booleans, numbers); quoted scalars stay strings.
    private static JsonNode? ToJson(YamlNode node, string path) => node switch
    {
        YamlMappingNode m => new JsonObject(m.Children.Select(c => KeyValuePair.Create(((YamlScalarNode)c.Key).Value ?? "", ToJson(c.Value, path)))),
        YamlSequenceNode s => new JsonArray([.. s.Children.Select(c => ToJson(c, path))]),
        YamlScalarNode { Style: ScalarStyle.Plain } p => PlainScalar(p.Value ?? ""),
        YamlScalarNode q => JsonValue.Create(q.Value ?? ""),
        _ => throw new TrainingArgumentsException($"{path}: line {node.Start.Line}: unsupported YAML node."),
    };

    private static JsonNode? PlainScalar(string v)
    {
        if (v is "" or "~" or "null" or "Null" or "NULL") return null;
        if (v is "true" or "True" or "TRUE") return JsonValue.Create(true);
        if (v is "false" or "False" or "FALSE") return JsonValue.Create(false);
        if (long.TryParse(v, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long l)) return JsonValue.Create(l);
        if (double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out double d)) return JsonValue.Create(d);
        return JsonValue.Create(v);
    }

    private static string Where(Field f) => $"{f.Source}: field '{f.Name}'";

    private static string Str(JsonNode? v, Field f) =>
        v is JsonValue j && j.TryGetValue(out string? s) ? s : throw new TrainingArgumentsException($"{Where(f)} must be a string, got {Shown(v)}.");

    private static bool Bool(JsonNode? v, Field f) =>
        v is JsonValue j && j.TryGetValue(out bool b) ? b : throw new TrainingArgumentsException($"{Where(f)} must be true or false, got {Shown(v)}.");

    private static double Num(JsonNode? v, Field f)
    {
        if (JsonNumber.Is(v)) return JsonNumber.Get(v!);
        // Hugging Face configs often write rates as strings ("2e-4"); accept a number in a string.
        if (v is JsonValue s && s.TryGetValue(out string? text) && double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double d)) return d;
        throw new TrainingArgumentsException($"{Where(f)} must be a number, got {Shown(v)}.");
    }

    private static int Int(JsonNode? v, Field f)
    {
        double d = Num(v, f);
        if (d != Math.Floor(d) || d > int.MaxValue || d < int.MinValue) throw new TrainingArgumentsException($"{Where(f)} must be an integer, got {Shown(v)}.");
        return (int)d;
    }

    private static int PositiveInt(JsonNode? v, Field f)
    {
        int i = Int(v, f);
        return i > 0 ? i : throw new TrainingArgumentsException($"{Where(f)} must be a positive integer, got {i}.");
    }

    private static int NonNegativeInt(JsonNode? v, Field f)
    {
        int i = Int(v, f);
        return i >= 0 ? i : throw new TrainingArgumentsException($"{Where(f)} must be 0 or more, got {i}.");
    }

    private static double Positive(double d, Field f) => d > 0 && double.IsFinite(d) ? d : throw new TrainingArgumentsException($"{Where(f)} must be positive, got {d.ToString(CultureInfo.InvariantCulture)}.");

    private static double NonNegative(double d, Field f) => d >= 0 && double.IsFinite(d) ? d : throw new TrainingArgumentsException($"{Where(f)} must be 0 or more, got {d.ToString(CultureInfo.InvariantCulture)}.");

    private static double Fraction(double d, Field f) => d is >= 0 and < 1 ? d : throw new TrainingArgumentsException($"{Where(f)} must be in [0, 1), got {d.ToString(CultureInfo.InvariantCulture)}.");

    private static double EvalFraction(double d, Field f) => d is >= 0 and < 1 ? d : throw new TrainingArgumentsException($"{Where(f)} must be a fraction in [0, 1), got {d.ToString(CultureInfo.InvariantCulture)}.");

    private static JsonObject Obj(JsonNode? v, Field f) => v switch
    {
        null => [],
        JsonObject o => (JsonObject)o.DeepClone(),
        // transformers accepts the kwargs as a JSON string too.
        JsonValue s when s.TryGetValue(out string? text) && JsonNode.Parse(text) is JsonObject parsed => parsed,
        _ => throw new TrainingArgumentsException($"{Where(f)} must be an object, got {Shown(v)}."),
    };

    private static string OneOf(string s, Field f, params string[] allowed) =>
        allowed.Contains(s) ? s : throw new TrainingArgumentsException($"{Where(f)} must be one of {string.Join(", ", allowed.Select(a => '"' + a + '"'))}; got \"{s}\".");

    private static IntervalStrategy Strategy(JsonNode? v, Field f) => OneOf(Str(v, f), f, "no", "steps", "epoch") switch
    {
        "no" => IntervalStrategy.No,
        "steps" => IntervalStrategy.Steps,
        _ => IntervalStrategy.Epoch,
    };

    private static string Shown(JsonNode? v) => v is null ? "null" : v.ToJsonString();

    private static int Distance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (int i = 0; i <= a.Length; i++) d[i, 0] = i;
        for (int j = 0; j <= b.Length; j++) d[0, j] = j;
        for (int i = 1; i <= a.Length; i++)
            for (int j = 1; j <= b.Length; j++)
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
        return d[a.Length, b.Length];
    }
}
