using System.Text.Json.Nodes;
using PeftHost.Abstractions.Config;

namespace ScaleShift;

/// <summary>
/// An SSF adapter's config: the targeting fields (<c>target_modules</c>, ...) and <c>init_std</c>, the
/// standard deviation of the initial scale (around 1) and shift (around 0); the paper's code uses 0.02,
/// and 0 starts at exactly the base model.
/// </summary>
public sealed class SsfConfig : TargetedTunerConfig
{
    /// <summary>The paper's initialisation: scale ~ N(1, 0.02²), shift ~ N(0, 0.02²).</summary>
    public const double DefaultInitStd = 0.02;

    /// <summary>Reads and checks a config; unknown fields are kept.</summary>
    /// <exception cref="TunerConfigException">A field is of the wrong type or out of range.</exception>
    public SsfConfig(JsonObject json) : this(new ConfigFields(json)) { }

    private SsfConfig(ConfigFields fields) : base(SsfTuner.PeftTypeName, fields)
    {
        InitStd = fields.GetDouble("init_std", DefaultInitStd);
        UnknownFields = fields.Remaining();
        if (!(InitStd >= 0) || !double.IsFinite(InitStd))
            throw new TunerConfigException($"adapter config field 'init_std': expected a finite number of at least 0, got {InitStd}.");
    }

    /// <summary>The standard deviation of the initial scale and shift.</summary>
    public double InitStd { get; }

    /// <inheritdoc />
    protected override void WriteTunerFields(JsonObject json) => json["init_std"] = InitStd;
}
