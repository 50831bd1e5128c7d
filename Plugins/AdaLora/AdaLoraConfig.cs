using System.Text.Json;
using System.Text.Json.Nodes;
using PeftHost.Abstractions.Config;

namespace PeftHost.Plugins.AdaLora;

/// <summary>
/// PEFT's <c>AdaLoraConfig</c> (a <c>LoraConfig</c> with AdaLoRA's budget fields): names and
/// defaults as in PEFT 0.13. LoRA fields AdaLoRA does not use are kept verbatim.
/// </summary>
public sealed class AdaLoraConfig : TargetedTunerConfig
{
    private readonly JsonNode? _initLoraWeights;
    private readonly JsonNode? _rankPatternJson;

    /// <summary>Parses an <c>adapter_config.json</c> object.</summary>
    public AdaLoraConfig(JsonObject json) : this(new ConfigFields(json)) { }

    private AdaLoraConfig(ConfigFields fields) : base(AdaLoraTuner.PeftTypeName, fields)
    {
        R = fields.GetInt("r", 8);
        LoraAlpha = fields.GetDouble("lora_alpha", 8);
        LoraDropout = fields.GetDouble("lora_dropout", 0.0);
        FanInFanOut = fields.GetBool("fan_in_fan_out", false);
        Bias = fields.GetString("bias", "none")!;
        _initLoraWeights = fields.GetRaw("init_lora_weights");
        InitLoraWeights = _initLoraWeights switch
        {
            null => true,
            JsonValue v when v.TryGetValue(out bool b) => b,
            JsonValue v when v.TryGetValue(out string? s) => s.Length > 0, // truthy, as PEFT's `if init_lora_weights:`
            _ => throw new TunerConfigException($"adapter config field 'init_lora_weights': expected true or false, got {_initLoraWeights.ToJsonString()}."),
        };
        TargetR = fields.GetInt("target_r", 8);
        InitR = fields.GetInt("init_r", 12);
        Tinit = fields.GetInt("tinit", 0);
        Tfinal = fields.GetInt("tfinal", 0);
        DeltaT = fields.GetInt("deltaT", 1);
        Beta1 = fields.GetDouble("beta1", 0.85);
        Beta2 = fields.GetDouble("beta2", 0.85);
        OrthRegWeight = fields.GetDouble("orth_reg_weight", 0.5);
        TotalStep = fields.Has("total_step") ? fields.GetInt("total_step", 0) : null;
        _rankPatternJson = fields.GetRaw("rank_pattern");
        RankPattern = ParseRankPattern(_rankPatternJson);
        UnknownFields = fields.Remaining();

        if (InitR < 0) throw new TunerConfigException($"adapter config field 'init_r': must be a non-negative integer, got {InitR}.");
        if (LoraDropout < 0 || LoraDropout >= 1) throw new TunerConfigException($"adapter config field 'lora_dropout': must be in [0, 1), got {LoraDropout}.");
        if (Bias != "none") throw new TunerConfigException($"adapter config field 'bias': '{Bias}' is not supported by this AdaLoRA plugin version (only 'none').");
        if (UnknownFields["use_dora"] is JsonValue dora && dora.TryGetValue(out bool useDora) && useDora)
            throw new TunerConfigException("adapter config field 'use_dora': ADALORA does not support DoRA.");
        if (UnknownFields["loftq_config"] is JsonObject loftq && loftq.Count > 0)
            throw new TunerConfigException("adapter config field 'loftq_config': ADALORA does not support LoftQ.");
        if (TargetModules?.Names is null && TargetModules?.Pattern is not null && !TargetModules.IsAllLinear)
        {
            if (LayersToTransform is not null) throw new TunerConfigException("adapter config field 'layers_to_transform': cannot be used when target_modules is a regular expression.");
            if (LayersPattern is not null) throw new TunerConfigException("adapter config field 'layers_pattern': cannot be used when target_modules is a regular expression.");
        }
        foreach ((string key, bool[] mask) in RankPattern)
            if (mask.Length != InitR)
                throw new TunerConfigException($"adapter config field 'rank_pattern.{key}': the mask has {mask.Length} entries, init_r is {InitR}.");
    }

    /// <summary>LoRA's rank; not used by AdaLoRA (its initial rank is <see cref="InitR"/>), kept as given.</summary>
    public int R { get; }

    /// <summary>The scaling numerator: the adapter's scaling is lora_alpha when positive, else the rank.</summary>
    public double LoraAlpha { get; }

    /// <summary>Dropout on the adapter path's input.</summary>
    public double LoraDropout { get; }

    /// <summary>Whether the base weight is stored in x out (GPT-2's Conv1D); ignored for Linear, as in PEFT.</summary>
    public bool FanInFanOut { get; }

    /// <summary>Which biases are trained; only "none" is supported.</summary>
    public string Bias { get; }

    /// <summary>Whether to reset A, B (normal, std 0.02) and E (zeros); false keeps standard-normal values.</summary>
    public bool InitLoraWeights { get; }

    /// <summary>The target average rank of the incremental matrices.</summary>
    public int TargetR { get; }

    /// <summary>The initial rank of each incremental matrix (the layers' r).</summary>
    public int InitR { get; }

    /// <summary>Steps of initial fine-tuning warmup.</summary>
    public int Tinit { get; }

    /// <summary>Steps of final fine-tuning.</summary>
    public int Tfinal { get; }

    /// <summary>Steps between two budget allocations.</summary>
    public int DeltaT { get; }

    /// <summary>EMA hyperparameter for sensitivity smoothing.</summary>
    public double Beta1 { get; }

    /// <summary>EMA hyperparameter for uncertainty quantification.</summary>
    public double Beta2 { get; }

    /// <summary>The coefficient of the orthogonal regularisation.</summary>
    public double OrthRegWeight { get; }

    /// <summary>The total number of training steps, or null.</summary>
    public int? TotalStep { get; }

    /// <summary>
    /// The rank masks allocated by PEFT's RankAllocator, by parameter name (e.g.
    /// <c>model.layers.0.q_proj.lora_E</c>); each keeps the triplets whose entry is true.
    /// </summary>
    public IReadOnlyDictionary<string, bool[]> RankPattern { get; }

    /// <summary>The adapter's scaling for rank <paramref name="r"/>, as PEFT's AdaLoraLayer.update_layer.</summary>
    public double Scaling(int r) => LoraAlpha > 0 ? LoraAlpha : r;

    /// <summary>
    /// The rank mask for the module at <paramref name="path"/>, or null. Keys are matched as PEFT
    /// resolves them: the last segment (<c>lora_E</c>) and an adapter-name segment are dropped.
    /// </summary>
    public bool[]? RankMask(string path, string adapter)
    {
        foreach ((string key, bool[] mask) in RankPattern)
        {
            var parts = (key.StartsWith("base_model.model.", StringComparison.Ordinal) ? key["base_model.model.".Length..] : key).Split('.').ToList();
            if (parts.Count > 1 && parts[^1] == adapter) parts.RemoveAt(parts.Count - 1);
            if (parts.Count > 1) parts.RemoveAt(parts.Count - 1);
            if (string.Join('.', parts) == path) return mask;
        }
        return null;
    }

    /// <inheritdoc />
    protected override void WriteTunerFields(JsonObject json)
    {
        json["r"] = R;
        json["lora_alpha"] = LoraAlpha == Math.Floor(LoraAlpha) ? JsonValue.Create((long)LoraAlpha) : JsonValue.Create(LoraAlpha);
        json["lora_dropout"] = LoraDropout;
        json["fan_in_fan_out"] = FanInFanOut;
        json["bias"] = Bias;
        json["init_lora_weights"] = _initLoraWeights?.DeepClone() ?? JsonValue.Create(true);
        json["target_r"] = TargetR;
        json["init_r"] = InitR;
        json["tinit"] = Tinit;
        json["tfinal"] = Tfinal;
        json["deltaT"] = DeltaT;
        json["beta1"] = Beta1;
        json["beta2"] = Beta2;
        json["orth_reg_weight"] = OrthRegWeight;
        json["total_step"] = TotalStep;
        json["rank_pattern"] = _rankPatternJson?.DeepClone();
    }

    private static Dictionary<string, bool[]> ParseRankPattern(JsonNode? node)
    {
        var result = new Dictionary<string, bool[]>(StringComparer.Ordinal);
        if (node is null) return result;
        if (node is not JsonObject obj)
            throw new TunerConfigException($"adapter config field 'rank_pattern': expected an object of parameter name to rank mask, got {node.ToJsonString()}.");
        foreach ((string key, JsonNode? value) in obj)
        {
            if (value is not JsonArray array)
                throw new TunerConfigException($"adapter config field 'rank_pattern.{key}': expected a list of booleans (AdaLoRA's rank mask), got {value?.ToJsonString() ?? "null"}.");
            var mask = new bool[array.Count];
            for (int i = 0; i < array.Count; i++)
            {
                mask[i] = array[i] switch
                {
                    JsonValue v when v.GetValueKind() is JsonValueKind.True or JsonValueKind.False => v.GetValue<bool>(),
                    JsonValue v when v.TryGetValue(out double d) && (d == 0 || d == 1) => d == 1,
                    _ => throw new TunerConfigException($"adapter config field 'rank_pattern.{key}': entry {i} is {array[i]?.ToJsonString() ?? "null"}, expected true or false."),
                };
            }
            result[key] = mask;
        }
        return result;
    }
}
