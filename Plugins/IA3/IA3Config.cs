using System.Text.Json.Nodes;
using PeftHost.Abstractions.Config;

namespace PeftHost.Plugins.IA3;

/// <summary>PEFT's <c>IA3Config</c>: field names and defaults as in PEFT 0.13.</summary>
/// <remarks><c>modules_to_save</c> is not read: it is kept verbatim with the other unknown fields.</remarks>
public sealed class IA3Config : TargetedTunerConfig
{
    /// <summary>Parses an <c>adapter_config.json</c> object.</summary>
    public IA3Config(JsonObject json) : this(new ConfigFields(json)) { }

    private IA3Config(ConfigFields fields) : base(IA3Tuner.PeftTypeName, fields)
    {
        FeedforwardModules = fields.GetModuleSelector("feedforward_modules");
        FanInFanOut = fields.GetBool("fan_in_fan_out", false);
        InitIA3Weights = fields.GetBool("init_ia3_weights", true);
        UnknownFields = fields.Remaining();

        // As PEFT: checked only when both are lists of names.
        if (FeedforwardModules?.Names is { } ff && TargetModules?.Names is { } targets)
        {
            var extra = ff.Where(n => !targets.Contains(n, StringComparer.Ordinal)).ToList();
            if (extra.Count > 0)
                throw new TunerConfigException($"adapter config field 'feedforward_modules': must be a subset of target_modules {TargetModules}; not in target_modules: {string.Join(", ", extra)}.");
        }
    }

    /// <summary>The modules whose (IA)³ vector scales the input instead of the output (null: none).</summary>
    public ModuleSelector? FeedforwardModules { get; }

    /// <summary>Whether the base weight is stored in x out (GPT-2's Conv1D); ignored for Linear, as in PEFT.</summary>
    public bool FanInFanOut { get; }

    /// <summary>Initialise the vectors to ones (false: standard normal, as PEFT).</summary>
    public bool InitIA3Weights { get; }

    /// <summary>
    /// Whether the module at <paramref name="path"/> is a feedforward module, by PEFT's rule: a
    /// regular expression must match the whole path; a name matches when the path ends with it.
    /// </summary>
    public bool IsFeedforward(string path)
    {
        if (FeedforwardModules is null) return false;
        if (FeedforwardModules.Names is { } names) return names.Any(n => path.EndsWith(n, StringComparison.Ordinal));
        return FeedforwardModules.Matches(path);
    }

    /// <inheritdoc />
    protected override void WriteFields(JsonObject json)
    {
        base.WriteFields(json);
        // PEFT 0.13's IA3Config has no layer filters (its loader refuses unknown fields): written only when set.
        if (LayersToTransform is null) json.Remove("layers_to_transform");
        if (LayersPattern is null) json.Remove("layers_pattern");
    }

    /// <inheritdoc />
    protected override void WriteTunerFields(JsonObject json)
    {
        json["feedforward_modules"] = FeedforwardModules?.ToJson();
        json["fan_in_fan_out"] = FanInFanOut;
        json["init_ia3_weights"] = InitIA3Weights;
    }
}
