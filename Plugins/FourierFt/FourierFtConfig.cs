using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using PeftHost.Abstractions.Config;

namespace PeftHost.Plugins.FourierFt;

/// <summary>
/// PEFT's <c>FourierFTConfig</c> (0.13.2): field names and defaults as PEFT's, written back in full.
/// <c>modules_to_save</c> is kept verbatim with the fields this version does not read (the host handles it).
/// </summary>
public sealed class FourierFtConfig : TargetedTunerConfig
{
    private static readonly string[] BiasModes = ["none", "all", "fourier_only"];

    /// <summary>Parses an <c>adapter_config.json</c> object.</summary>
    /// <exception cref="TunerConfigException">A field is invalid; the message names it.</exception>
    public FourierFtConfig(JsonObject json) : this(new ConfigFields(json)) { }

    private FourierFtConfig(ConfigFields fields) : base(FourierFtTuner.PeftTypeName, fields)
    {
        NFrequency = fields.GetInt("n_frequency", 1000);
        Scaling = fields.GetDouble("scaling", 150.0);
        RandomLocSeed = ReadSeed(fields.GetRaw("random_loc_seed"));
        FanInFanOut = fields.GetBool("fan_in_fan_out", false);
        Bias = fields.GetString("bias", "none")!;
        NFrequencyPattern = ReadPattern(fields.GetRaw("n_frequency_pattern"));
        InitWeights = fields.GetBool("init_weights", false);
        UnknownFields = fields.Remaining();

        // PEFT's FourierFTConfig.__post_init__ and FourierFTLayer.update_layer.
        if (TargetModules?.Pattern is not null && !TargetModules.IsAllLinear && LayersToTransform is not null)
            throw new TunerConfigException("adapter config field 'layers_to_transform': `layers_to_transform` cannot be used when `target_modules` is a str.");
        if (TargetModules?.Pattern is not null && !TargetModules.IsAllLinear && LayersPattern is not null)
            throw new TunerConfigException("adapter config field 'layers_pattern': `layers_pattern` cannot be used when `target_modules` is a str.");
        if (NFrequency <= 0) throw new TunerConfigException($"adapter config field 'n_frequency': `n_frequency` should be a positive integer value but the value passed is {NFrequency}.");
        foreach ((string key, int n) in NFrequencyPattern)
            if (n <= 0) throw new TunerConfigException($"adapter config field 'n_frequency_pattern.{key}': `n_frequency` should be a positive integer value but the value passed is {n}.");
        if (!BiasModes.Contains(Bias)) throw new TunerConfigException($"adapter config field 'bias': expected one of {string.Join(", ", BiasModes)}, got \"{Bias}\".");
    }

    /// <summary><c>n_frequency</c> (default 1000): trainable spectral coefficients per layer.</summary>
    public int NFrequency { get; }

    /// <summary><c>scaling</c> (default 150): multiplies ΔW.</summary>
    public double Scaling { get; }

    /// <summary><c>random_loc_seed</c> (default 777): the seed of the frequency locations, the same for every layer.</summary>
    public long RandomLocSeed { get; }

    /// <summary>
    /// <c>fan_in_fan_out</c>: the base weight is stored in x out (GPT-2's Conv1D). As PEFT
    /// (<c>FourierFTModel._create_new_module</c>), the model sets it to true for a Conv1D and false for a Linear.
    /// </summary>
    public bool FanInFanOut { get; internal set; }

    /// <summary><c>bias</c>: "none", "all" or "fourier_only"; trained biases are not saved, as in PEFT 0.13.2.</summary>
    public string Bias { get; }

    /// <summary><c>n_frequency_pattern</c>: module name → n_frequency, in file order.</summary>
    public IReadOnlyList<KeyValuePair<string, int>> NFrequencyPattern { get; }

    /// <summary><c>init_weights</c> (default false): false draws the spectrum from a standard normal; true starts it at zeros.</summary>
    public bool InitWeights { get; }

    /// <summary>
    /// The n_frequency of the module at <paramref name="path"/>, by PEFT's rule
    /// (<c>FourierFTModel._create_and_replace</c>): the first key k of <c>n_frequency_pattern</c> for which
    /// <c>re.match(rf".*\.{k}$", path)</c> holds, else the path itself as a key, else <c>n_frequency</c>.
    /// </summary>
    public int NFrequencyOf(string path)
    {
        foreach ((string key, int n) in NFrequencyPattern)
            if (Regex.IsMatch(path, @"^.*\." + key + "$", RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1))) return n;
        foreach ((string key, int n) in NFrequencyPattern)
            if (key == path) return n;
        return NFrequency;
    }

    /// <inheritdoc />
    protected override void WriteTunerFields(JsonObject json)
    {
        json["n_frequency"] = NFrequency;
        json["scaling"] = Scaling;
        json["random_loc_seed"] = RandomLocSeed;
        json["fan_in_fan_out"] = FanInFanOut;
        json["bias"] = Bias;
        json["n_frequency_pattern"] = new JsonObject(NFrequencyPattern.Select(p => KeyValuePair.Create(p.Key, (JsonNode?)JsonValue.Create(p.Value))));
        json["init_weights"] = InitWeights;
    }

    private static long ReadSeed(JsonNode? node)
    {
        if (node is null) return 777;
        if (node is JsonValue v && v.GetValueKind() == JsonValueKind.Number && long.TryParse(v.ToJsonString(), System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out long seed) && seed >= 0)
            return seed;
        throw new TunerConfigException($"adapter config field 'random_loc_seed': expected a non-negative integer, got {node.ToJsonString()}.");
    }

    private static List<KeyValuePair<string, int>> ReadPattern(JsonNode? node)
    {
        var pattern = new List<KeyValuePair<string, int>>();
        if (node is null) return pattern;
        if (node is not JsonObject map) throw new TunerConfigException($"adapter config field 'n_frequency_pattern': expected an object of module name to integer, got {node.ToJsonString()}.");
        foreach ((string key, JsonNode? value) in map)
        {
            if (value is not JsonValue v || v.GetValueKind() != JsonValueKind.Number || !int.TryParse(v.ToJsonString(), System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out int n))
                throw new TunerConfigException($"adapter config field 'n_frequency_pattern.{key}': expected an integer, got {value?.ToJsonString() ?? "null"}.");
            try
            {
                _ = new Regex(key, RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));
            }
            catch (ArgumentException e)
            {
                throw new TunerConfigException($"adapter config field 'n_frequency_pattern': key '{key}' is not a valid regular expression: {e.Message}");
            }
            pattern.Add(KeyValuePair.Create(key, n));
        }
        return pattern;
    }
}
