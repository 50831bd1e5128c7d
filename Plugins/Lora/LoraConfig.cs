using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using PeftHost.Abstractions.Config;

namespace PeftHost.Plugins.Lora;

/// <summary>
/// PEFT's <c>LoraConfig</c>: every field of PEFT 0.13 by its name, with PEFT's defaults, written
/// back in full; fields of newer PEFT versions are read and written back only when set (PEFT 0.13
/// refuses fields it does not know); fields nobody knows are kept verbatim.
/// </summary>
public sealed class LoraConfig : TargetedTunerConfig
{
    // Fields newer than PEFT 0.13 that this plugin understands well enough to keep: written back only
    // when they differ from their default. The value says what "unset" is.
    private static readonly (string Name, JsonNode? Default)[] NewerFields =
    [
        ("lora_bias", JsonValue.Create(false)),
        ("use_qalora", JsonValue.Create(false)),
        ("qalora_group_size", JsonValue.Create(16)),
        ("eva_config", null),
        ("corda_config", null),
        ("trainable_token_indices", null),
        ("target_parameters", null),
        ("alora_invocation_tokens", null),
        ("arrow_config", null),
        ("ensure_weight_tying", JsonValue.Create(false)),
    ];

    // Newer features that change the numbers or the tensors: refused when set rather than ignored.
    private static readonly string[] UnsupportedWhenSet =
        ["lora_bias", "use_qalora", "trainable_token_indices", "target_parameters", "alora_invocation_tokens", "arrow_config"];

    private readonly JsonNode? _megatronConfig;
    private readonly JsonNode? _loftqConfig;
    private readonly JsonNode? _layerReplication;
    private readonly JsonObject _newerFields = new();

    /// <summary>Parses an <c>adapter_config.json</c> object.</summary>
    /// <exception cref="TunerConfigException">A field is invalid; the message names it.</exception>
    public LoraConfig(JsonObject json) : this(new ConfigFields(json)) { }

    private LoraConfig(ConfigFields fields) : base(LoraTuner.PeftTypeName, fields)
    {
        R = fields.GetInt("r", 8);
        LoraAlpha = fields.GetDouble("lora_alpha", 8);
        LoraDropout = fields.GetDouble("lora_dropout", 0.0);
        FanInFanOut = fields.GetBool("fan_in_fan_out", false);
        Bias = fields.GetString("bias", "none")!;
        UseRsLora = fields.GetBool("use_rslora", false);
        ModulesToSave = fields.GetStringList("modules_to_save");
        InitLoraWeights = ParseInit(fields.GetRaw("init_lora_weights"));
        RankPattern = fields.GetNumberMap("rank_pattern");
        AlphaPattern = fields.GetNumberMap("alpha_pattern");
        _megatronConfig = fields.GetRaw("megatron_config");
        MegatronCore = fields.Has("megatron_core") ? fields.GetString("megatron_core") : DefaultMegatronCore;
        _loftqConfig = fields.GetRaw("loftq_config");
        UseDora = fields.GetBool("use_dora", false);
        _layerReplication = fields.GetRaw("layer_replication");
        foreach ((string name, JsonNode? unset) in NewerFields)
        {
            JsonNode? value = fields.GetRaw(name);
            if (value is not null && !JsonNode.DeepEquals(value, unset)) _newerFields[name] = value;
        }
        UnknownFields = fields.Remaining();
        Validate();
    }

    /// <summary>PEFT's default for <c>megatron_core</c>.</summary>
    public const string DefaultMegatronCore = "megatron.core";

    /// <summary>The rank (<c>r</c>, default 8).</summary>
    public int R { get; }

    /// <summary><c>lora_alpha</c> (default 8): the scaling is alpha / r (or alpha / sqrt(r) with rsLoRA).</summary>
    public double LoraAlpha { get; }

    /// <summary><c>lora_dropout</c>: dropout on the adapter path's input.</summary>
    public double LoraDropout { get; }

    /// <summary>
    /// <c>fan_in_fan_out</c>: the base weight is stored in x out (GPT-2's Conv1D). As PEFT, the
    /// model sets it to true when it adapts a Conv1D and to false when it adapts a Linear.
    /// </summary>
    public bool FanInFanOut { get; internal set; }

    /// <summary><c>bias</c>: which biases train, "none", "all" or "lora_only".</summary>
    public string Bias { get; }

    /// <summary><c>use_rslora</c>: rank-stabilised scaling alpha / sqrt(r).</summary>
    public bool UseRsLora { get; }

    /// <summary><c>modules_to_save</c>: whole modules trained and saved besides the adapter (handled by the host).</summary>
    public IReadOnlyList<string>? ModulesToSave { get; }

    /// <summary>
    /// <c>init_lora_weights</c> as text: "true", "false", "gaussian", "pissa", "pissa_niter_N" or "olora".
    /// </summary>
    public string InitLoraWeights { get; }

    /// <summary><c>rank_pattern</c>: module name pattern → rank, in file order.</summary>
    public IReadOnlyDictionary<string, double> RankPattern { get; }

    /// <summary><c>alpha_pattern</c>: module name pattern → alpha, in file order.</summary>
    public IReadOnlyDictionary<string, double> AlphaPattern { get; }

    /// <summary><c>megatron_core</c> (kept and written back; no Megatron layers exist here).</summary>
    public string? MegatronCore { get; }

    /// <summary><c>use_dora</c>: weight-decomposed LoRA (DoRA).</summary>
    public bool UseDora { get; }

    /// <summary>Whether the initialisation replaces the base weight by a residual (PiSSA, OLoRA).</summary>
    public bool ModifiesBaseWeights => InitLoraWeights == "olora" || InitLoraWeights.StartsWith("pissa", StringComparison.Ordinal);

    /// <summary>
    /// The rank and alpha of the module at <paramref name="path"/>, by PEFT's rule: the first key of
    /// <c>rank_pattern</c> then <c>alpha_pattern</c> such that the path matches <c>.*\.KEY$</c>
    /// picks both entries (each falling back to <c>r</c> / <c>lora_alpha</c> when that key is absent).
    /// </summary>
    public (int R, double Alpha) RankAndAlpha(string path)
    {
        string key = path;
        foreach (string candidate in RankPattern.Keys.Concat(AlphaPattern.Keys))
            if (Regex.IsMatch(path, @"^.*\." + candidate + "$", RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1)))
            {
                key = candidate;
                break;
            }
        int r = RankPattern.TryGetValue(key, out double rank) ? (int)rank : R;
        double alpha = AlphaPattern.TryGetValue(key, out double a) ? a : LoraAlpha;
        return (r, alpha);
    }

    /// <summary>The scaling of an adapter of rank <paramref name="r"/> and alpha <paramref name="alpha"/>.</summary>
    public double Scaling(int r, double alpha) => UseRsLora ? alpha / Math.Sqrt(r) : alpha / r;

    /// <inheritdoc />
    protected override void WriteTunerFields(JsonObject json)
    {
        json["r"] = R;
        json["lora_alpha"] = Number(LoraAlpha);
        json["lora_dropout"] = LoraDropout;
        json["fan_in_fan_out"] = FanInFanOut;
        json["bias"] = Bias;
        json["use_rslora"] = UseRsLora;
        json["modules_to_save"] = ModulesToSave is null ? null : new JsonArray([.. ModulesToSave.Select(s => JsonValue.Create(s))]);
        json["init_lora_weights"] = InitLoraWeights switch { "true" => true, "false" => false, _ => InitLoraWeights };
        json["rank_pattern"] = Map(RankPattern);
        json["alpha_pattern"] = Map(AlphaPattern);
        json["megatron_config"] = _megatronConfig?.DeepClone();
        json["megatron_core"] = MegatronCore;
        json["loftq_config"] = _loftqConfig?.DeepClone() ?? new JsonObject();
        json["use_dora"] = UseDora;
        json["layer_replication"] = _layerReplication?.DeepClone();
        foreach ((string name, JsonNode? value) in _newerFields) json[name] = value?.DeepClone();
    }

    private static string ParseInit(JsonNode? init)
    {
        string value = init switch
        {
            null => "true",
            JsonValue v when v.TryGetValue(out bool b) => b ? "true" : "false",
            JsonValue v when v.TryGetValue(out string? s) => s,
            _ => throw new TunerConfigException($"adapter config field 'init_lora_weights': expected true, false or a method name, got {init.ToJsonString()}."),
        };
        if (value is "true" or "false" or "gaussian" or "pissa" or "olora") return value;
        if (Regex.IsMatch(value, @"^pissa_niter_\d+$")) return value;
        if (value is "loftq" or "eva" or "corda")
            throw new TunerConfigException($"adapter config field 'init_lora_weights': '{value}' is not supported by this LoRA plugin (true, false, \"gaussian\", \"pissa\", \"pissa_niter_N\", \"olora\").");
        throw new TunerConfigException($"adapter config field 'init_lora_weights': unknown initialisation '{value}' (expected true, false, \"gaussian\", \"pissa\", \"pissa_niter_N\" or \"olora\").");
    }

    private void Validate()
    {
        if (R <= 0) throw new TunerConfigException($"adapter config field 'r': must be a positive integer, got {R}.");
        if (LoraDropout < 0 || LoraDropout >= 1) throw new TunerConfigException($"adapter config field 'lora_dropout': must be in [0, 1), got {LoraDropout}.");
        if (Bias is not ("none" or "all" or "lora_only"))
            throw new TunerConfigException($"adapter config field 'bias': must be 'none', 'all' or 'lora_only', got '{Bias}'.");
        // As PEFT's LoraConfig.__post_init__: layer filters need a list of names.
        if (TargetModules is { Pattern: not null, IsAllLinear: false })
        {
            if (LayersToTransform is not null) throw new TunerConfigException("adapter config field 'layers_to_transform': cannot be used when target_modules is a str (a regular expression).");
            if (LayersPattern is not null) throw new TunerConfigException("adapter config field 'layers_pattern': cannot be used when target_modules is a str (a regular expression).");
        }
        if (UseDora && _megatronConfig is not null)
            throw new TunerConfigException("adapter config field 'use_dora': DoRA does not support megatron_core, set use_dora to false.");
        foreach ((string key, double rank) in RankPattern)
            if (rank <= 0 || rank != Math.Floor(rank))
                throw new TunerConfigException($"adapter config field 'rank_pattern.{key}': must be a positive integer, got {rank}.");
        foreach (string key in RankPattern.Keys.Concat(AlphaPattern.Keys))
        {
            try { _ = new Regex(key); }
            catch (ArgumentException e) { throw new TunerConfigException($"adapter config field '{(RankPattern.ContainsKey(key) ? "rank_pattern" : "alpha_pattern")}': key '{key}' is not a valid regular expression: {e.Message}"); }
        }
        if (_layerReplication is not null)
            throw new TunerConfigException("adapter config field 'layer_replication': replicating base layers is not supported by this LoRA plugin.");
        foreach (string name in UnsupportedWhenSet)
            if (_newerFields.ContainsKey(name))
                throw new TunerConfigException($"adapter config field '{name}': {_newerFields[name]!.ToJsonString()} asks for a feature of a PEFT version newer than 0.13 that this LoRA plugin does not implement.");
    }

    private static JsonNode Number(double value) =>
        value == Math.Floor(value) && Math.Abs(value) < 1e15 ? JsonValue.Create((long)value) : JsonValue.Create(value);

    private static JsonObject Map(IReadOnlyDictionary<string, double> map)
    {
        var obj = new JsonObject();
        foreach ((string key, double value) in map) obj[key] = Number(value);
        return obj;
    }
}
