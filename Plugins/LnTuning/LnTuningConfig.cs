using System.Text.Json.Nodes;
using PeftHost.Abstractions.Config;

namespace PeftHost.Plugins.LnTuning;

/// <summary>
/// PEFT's <c>LNTuningConfig</c> (0.13.2): <c>target_modules</c> and <c>modules_to_save</c> only (the latter kept
/// verbatim for the host). PEFT's config has no layer filters: <c>layers_to_transform</c> / <c>layers_pattern</c>
/// / <c>exclude_modules</c> are applied and written back only when set.
/// </summary>
public sealed class LnTuningConfig : TargetedTunerConfig
{
    /// <summary>Parses an <c>adapter_config.json</c> object.</summary>
    /// <exception cref="TunerConfigException">A field is invalid; the message names it.</exception>
    public LnTuningConfig(JsonObject json) : this(new ConfigFields(json)) { }

    private LnTuningConfig(ConfigFields fields) : base(LnTuningTuner.PeftTypeName, fields)
    {
        UnknownFields = fields.Remaining();
    }

    /// <inheritdoc />
    protected override void WriteFields(JsonObject json)
    {
        base.WriteFields(json);
        if (LayersToTransform is null) json.Remove("layers_to_transform");
        if (LayersPattern is null) json.Remove("layers_pattern");
    }

    /// <inheritdoc />
    protected override void WriteTunerFields(JsonObject json)
    {
        // LN tuning has no fields of its own.
    }
}
