using System.Text.Json.Nodes;
using PeftHost.Abstractions.Config;

namespace PeftHost.Plugins.Lora;

/// <summary>PEFT's <c>LoraConfig</c>: field names and defaults as in PEFT 0.13.</summary>
public sealed class LoraConfig : TargetedTunerConfig
{
    /// <summary>Parses an <c>adapter_config.json</c> object.</summary>
    public LoraConfig(JsonObject json) : this(new ConfigFields(json)) { }

    private LoraConfig(ConfigFields fields) : base(LoraTuner.PeftTypeName, fields)
    {
        R = fields.GetInt("r", 8);
        LoraAlpha = fields.GetDouble("lora_alpha", 8);
        LoraDropout = fields.GetDouble("lora_dropout", 0.0);
        UseRsLora = fields.GetBool("use_rslora", false);
        FanInFanOut = fields.GetBool("fan_in_fan_out", false);
        Bias = fields.GetString("bias", "none")!;
        JsonNode? init = fields.GetRaw("init_lora_weights");
        InitLoraWeights = init switch
        {
            null => "true",
            JsonValue v when v.TryGetValue(out bool b) => b ? "true" : "false",
            JsonValue v when v.TryGetValue(out string? s) => s,
            _ => throw new TunerConfigException($"adapter config field 'init_lora_weights': expected true, false or a method name, got {init.ToJsonString()}."),
        };
        UnknownFields = fields.Remaining();

        if (R <= 0) throw new TunerConfigException($"adapter config field 'r': must be a positive integer, got {R}.");
        if (LoraDropout < 0 || LoraDropout >= 1) throw new TunerConfigException($"adapter config field 'lora_dropout': must be in [0, 1), got {LoraDropout}.");
        if (Bias != "none") throw new TunerConfigException($"adapter config field 'bias': '{Bias}' is not supported by this LoRA plugin version (only 'none').");
        if (FanInFanOut) throw new TunerConfigException("adapter config field 'fan_in_fan_out': true is not supported by this LoRA plugin version.");
        if (InitLoraWeights is not ("true" or "false" or "gaussian"))
            throw new TunerConfigException($"adapter config field 'init_lora_weights': '{InitLoraWeights}' is not supported by this LoRA plugin version (true, false, \"gaussian\").");
    }

    /// <summary>The rank.</summary>
    public int R { get; }

    /// <summary>The alpha of the scaling alpha / r.</summary>
    public double LoraAlpha { get; }

    /// <summary>Dropout on the adapter path's input.</summary>
    public double LoraDropout { get; }

    /// <summary>Rank-stabilised scaling alpha / sqrt(r).</summary>
    public bool UseRsLora { get; }

    /// <summary>Whether the base weight is stored in x out (GPT-2's Conv1D).</summary>
    public bool FanInFanOut { get; }

    /// <summary>Which biases are trained: "none", "all" or "lora_only".</summary>
    public string Bias { get; }

    /// <summary>"true" (Kaiming-uniform A, zero B), "false" (no reset) or "gaussian".</summary>
    public string InitLoraWeights { get; }

    /// <summary>The adapter's scaling for rank <paramref name="r"/>.</summary>
    public double Scaling(int r) => UseRsLora ? LoraAlpha / Math.Sqrt(r) : LoraAlpha / r;

    /// <inheritdoc />
    protected override void WriteTunerFields(JsonObject json)
    {
        json["r"] = R;
        json["lora_alpha"] = LoraAlpha == Math.Floor(LoraAlpha) ? JsonValue.Create((long)LoraAlpha) : JsonValue.Create(LoraAlpha);
        json["lora_dropout"] = LoraDropout;
        json["fan_in_fan_out"] = FanInFanOut;
        json["bias"] = Bias;
        json["use_rslora"] = UseRsLora;
        json["init_lora_weights"] = InitLoraWeights switch { "true" => true, "false" => false, _ => InitLoraWeights };
    }
}
