using System.Text.Json.Nodes;
using PeftHost.Abstractions.Config;

namespace OutputScale;

/// <summary>The config: the targeting fields and <c>init_scale</c>, the value every scale starts at.</summary>
public sealed class OutputScaleConfig : TargetedTunerConfig
{
    public OutputScaleConfig(JsonObject json) : this(new ConfigFields(json)) { }

    private OutputScaleConfig(ConfigFields fields) : base(OutputScaleTuner.PeftTypeName, fields)
    {
        InitScale = fields.GetDouble("init_scale", 1.0);
        UnknownFields = fields.Remaining();
        if (InitScale == 0) throw new TunerConfigException("adapter config field 'init_scale': must not be 0 (a zero scale cannot be unmerged), got 0.");
    }

    public double InitScale { get; }

    protected override void WriteTunerFields(JsonObject json) => json["init_scale"] = InitScale;
}
