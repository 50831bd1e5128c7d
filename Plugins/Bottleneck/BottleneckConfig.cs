using System.Text.Json.Nodes;
using PeftHost.Abstractions.Config;

namespace PeftHost.Plugins.Bottleneck;

/// <summary>
/// The <c>BOTTLENECK</c> config (docs/methods/bottleneck.md): the bottleneck width (<c>adapter_size</c>, or
/// <c>reduction_factor</c> of the width the adapter reads), <c>adapter_act</c>, <c>adapter_dropout</c>,
/// <c>parallel</c>, <c>scaling</c>, <c>init_weights</c>, beside PEFT's common and targeting fields.
/// </summary>
public sealed class BottleneckConfig : TargetedTunerConfig
{
    /// <summary>The activations <c>adapter_act</c> may name.</summary>
    public static readonly IReadOnlyList<string> Activations = ["relu", "gelu", "silu", "tanh"];

    private readonly JsonNode? _modulesToSave;

    /// <summary>Parses an <c>adapter_config.json</c> object.</summary>
    /// <exception cref="TunerConfigException">A field is invalid; the message names it and what was expected.</exception>
    public BottleneckConfig(JsonObject json) : this(new ConfigFields(json)) { }

    private BottleneckConfig(ConfigFields fields) : base(BottleneckTuner.PeftTypeName, fields)
    {
        bool hasSize = fields.Has("adapter_size"), hasFactor = fields.Has("reduction_factor");
        AdapterSize = hasSize ? fields.GetInt("adapter_size", 0) : null;
        ReductionFactor = hasFactor ? fields.GetDouble("reduction_factor", 0) : null;
        AdapterAct = fields.GetString("adapter_act", "relu")!;
        AdapterDropout = fields.GetDouble("adapter_dropout", 0.0);
        Parallel = fields.GetBool("parallel", false);
        Scaling = fields.GetDouble("scaling", 1.0);
        InitWeights = fields.GetBool("init_weights", true);
        _modulesToSave = fields.GetRaw("modules_to_save");
        UnknownFields = fields.Remaining();

        if (hasSize == hasFactor)
            throw new TunerConfigException($"adapter config fields 'adapter_size' and 'reduction_factor': exactly one must be given, got {(hasSize ? "both" : "neither")}.");
        if (AdapterSize is <= 0) throw new TunerConfigException($"adapter config field 'adapter_size': expected a positive integer, got {AdapterSize}.");
        if (ReductionFactor is <= 0) throw new TunerConfigException($"adapter config field 'reduction_factor': expected a positive number, got {ReductionFactor}.");
        if (!Activations.Contains(AdapterAct))
            throw new TunerConfigException($"adapter config field 'adapter_act': expected one of {string.Join(", ", Activations.Select(a => $"\"{a}\""))}, got \"{AdapterAct}\".");
        if (AdapterDropout is < 0 or >= 1) throw new TunerConfigException($"adapter config field 'adapter_dropout': expected a probability in [0, 1), got {AdapterDropout}.");
    }

    /// <summary><c>adapter_size</c>: the bottleneck width m (null when <see cref="ReductionFactor"/> gives it).</summary>
    public int? AdapterSize { get; }

    /// <summary><c>reduction_factor</c>: m = max(1, floor(d_read / factor)) per module (null when <see cref="AdapterSize"/> gives m).</summary>
    public double? ReductionFactor { get; }

    /// <summary><c>adapter_act</c>: "relu", "gelu" (the exact erf form), "silu" or "tanh".</summary>
    public string AdapterAct { get; }

    /// <summary><c>adapter_dropout</c>: dropout on the adapter's input, training only.</summary>
    public double AdapterDropout { get; }

    /// <summary><c>parallel</c>: false reads the module's output (serial), true its input (parallel).</summary>
    public bool Parallel { get; }

    /// <summary><c>scaling</c> (default 1): s, multiplies the adapter's output.</summary>
    public double Scaling { get; }

    /// <summary><c>init_weights</c> (default true): the up projection starts at zero (a no-op adapter); false draws it as nn.Linear does.</summary>
    public bool InitWeights { get; }

    /// <summary>The bottleneck width for a module whose adapter reads <paramref name="width"/> features.</summary>
    public int Width(long width) => AdapterSize ?? (int)Math.Max(1, Math.Floor(width / ReductionFactor!.Value));

    /// <inheritdoc />
    protected override void WriteTunerFields(JsonObject json)
    {
        json["modules_to_save"] = _modulesToSave?.DeepClone();
        json["adapter_size"] = AdapterSize;
        json["reduction_factor"] = ReductionFactor;
        json["adapter_act"] = AdapterAct;
        json["adapter_dropout"] = AdapterDropout;
        json["parallel"] = Parallel;
        json["scaling"] = Scaling;
        json["init_weights"] = InitWeights;
    }
}
