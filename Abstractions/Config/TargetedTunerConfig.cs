using System.Text.Json.Nodes;

namespace PeftHost.Abstractions.Config;

/// <summary>
/// The fields of configs whose tuner injects layers into chosen modules (LoRA, IA3, AdaLoRA):
/// <c>target_modules</c>, <c>exclude_modules</c>, <c>layers_to_transform</c>, <c>layers_pattern</c>.
/// </summary>
public abstract class TargetedTunerConfig : TunerConfig
{
    /// <summary>Reads the shared and targeting fields.</summary>
    protected TargetedTunerConfig(string peftType, ConfigFields fields) : base(peftType, fields)
    {
        TargetModules = fields.GetModuleSelector("target_modules");
        ExcludeModules = fields.GetModuleSelector("exclude_modules");
        LayersToTransform = fields.GetIntList("layers_to_transform");
        JsonNode? pattern = fields.GetRaw("layers_pattern");
        LayersPattern = pattern switch
        {
            null => null,
            JsonValue v when v.TryGetValue(out string? s) => [s],
            JsonArray a => a.Select(n => n is JsonValue v && v.TryGetValue(out string? s) ? s
                : throw new TunerConfigException($"adapter config field 'layers_pattern': expected strings, got {n?.ToJsonString() ?? "null"}.")).ToList(),
            _ => throw new TunerConfigException($"adapter config field 'layers_pattern': expected a string or a list of strings, got {pattern.ToJsonString()}."),
        };
    }

    /// <summary>The modules to adapt: names, a regular expression, or <c>all-linear</c>.</summary>
    public ModuleSelector? TargetModules { get; init; }

    /// <summary>Modules never to adapt, even when <see cref="TargetModules"/> selects them.</summary>
    public ModuleSelector? ExcludeModules { get; init; }

    /// <summary>Only these layer indices are adapted (null: all).</summary>
    public IReadOnlyList<int>? LayersToTransform { get; init; }

    /// <summary>The name of the layer list in module paths (e.g. "layers", "h"); null: PEFT's defaults.</summary>
    public IReadOnlyList<string>? LayersPattern { get; init; }

    /// <inheritdoc />
    protected override void WriteFields(JsonObject json)
    {
        json["target_modules"] = TargetModules?.ToJson();
        if (ExcludeModules is not null) json["exclude_modules"] = ExcludeModules.ToJson();
        json["layers_to_transform"] = LayersToTransform is null ? null : new JsonArray([.. LayersToTransform.Select(i => JsonValue.Create(i))]);
        json["layers_pattern"] = LayersPattern is null ? null : LayersPattern.Count == 1 ? LayersPattern[0] : new JsonArray([.. LayersPattern.Select(s => JsonValue.Create(s))]);
        WriteTunerFields(json);
    }

    /// <summary>Writes the tuner's own fields by PEFT's names.</summary>
    protected abstract void WriteTunerFields(JsonObject json);
}
