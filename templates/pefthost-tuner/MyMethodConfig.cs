using System.Text.Json.Nodes;
using PeftHost.Abstractions.Config;

namespace MyMethod;

/// <summary>
/// The method's <c>adapter_config.json</c>: the targeting fields every layer method has (<c>target_modules</c>,
/// <c>exclude_modules</c>, <c>layers_to_transform</c>, ...), read by the base class, and this method's own:
/// <c>r</c>, the rank of the update (default 8), and <c>alpha</c>, its scale numerator (scaling = alpha / r,
/// default 8).
/// </summary>
public sealed class MyMethodConfig : TargetedTunerConfig
{
    /// <summary>Reads and checks a config; unknown fields are kept and written back unchanged.</summary>
    /// <exception cref="TunerConfigException">A field is missing, of the wrong type or out of range.</exception>
    public MyMethodConfig(JsonObject json) : this(new ConfigFields(json)) { }

    private MyMethodConfig(ConfigFields fields) : base(MyMethodTuner.PeftTypeName, fields)
    {
        R = fields.GetInt("r", 8);
        Alpha = fields.GetDouble("alpha", 8);
        UnknownFields = fields.Remaining();   // last: everything not read above is kept verbatim
        if (R < 1) throw new TunerConfigException($"adapter config field 'r': expected an integer of at least 1, got {R}.");
        if (!double.IsFinite(Alpha)) throw new TunerConfigException($"adapter config field 'alpha': expected a finite number, got {Alpha}.");
    }

    /// <summary>The rank of the update.</summary>
    public int R { get; }

    /// <summary>The update is scaled by alpha / r.</summary>
    public double Alpha { get; }

    /// <inheritdoc />
    protected override void WriteTunerFields(JsonObject json)
    {
        json["r"] = R;
        json["alpha"] = Alpha;
    }
}
