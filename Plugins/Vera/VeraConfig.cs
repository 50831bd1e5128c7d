using System.Text.Json;
using System.Text.Json.Nodes;
using PeftHost.Abstractions.Config;

namespace PeftHost.Plugins.Vera;

/// <summary>
/// PEFT's <c>VeraConfig</c> (0.13.2): field names and defaults as PEFT's, written back in full.
/// <c>modules_to_save</c> is kept verbatim with the fields this version does not read (the host handles it).
/// </summary>
public sealed class VeraConfig : TargetedTunerConfig
{
    private static readonly string[] BiasModes = ["none", "all", "vera_only"];

    /// <summary>Parses an <c>adapter_config.json</c> object.</summary>
    /// <exception cref="TunerConfigException">A field is invalid; the message names it.</exception>
    public VeraConfig(JsonObject json) : this(new ConfigFields(json)) { }

    private VeraConfig(ConfigFields fields) : base(VeraTuner.PeftTypeName, fields)
    {
        R = fields.GetInt("r", 256);
        ProjectionPrngKey = ReadSeed(fields.GetRaw("projection_prng_key"));
        SaveProjection = fields.GetBool("save_projection", true);
        VeraDropout = fields.GetDouble("vera_dropout", 0.0);
        DInitial = fields.GetDouble("d_initial", 0.1);
        FanInFanOut = fields.GetBool("fan_in_fan_out", false);
        Bias = fields.GetString("bias", "none")!;
        InitWeights = fields.GetBool("init_weights", true);
        UnknownFields = fields.Remaining();

        // PEFT's VeraLayer.update_layer message.
        if (R <= 0) throw new TunerConfigException($"adapter config field 'r': `r` should be a positive integer value but the value passed is {R}.");
        if (VeraDropout is < 0 or >= 1) throw new TunerConfigException($"adapter config field 'vera_dropout': expected a probability in [0, 1), got {VeraDropout}.");
        if (!BiasModes.Contains(Bias)) throw new TunerConfigException($"adapter config field 'bias': expected one of {string.Join(", ", BiasModes)}, got \"{Bias}\".");
    }

    /// <summary><c>r</c> (default 256): the rank of the shared projections.</summary>
    public int R { get; }

    /// <summary><c>projection_prng_key</c> (default 0): the seed of the generator that draws <c>vera_A</c> then <c>vera_B</c>.</summary>
    public long ProjectionPrngKey { get; }

    /// <summary><c>save_projection</c> (default true): whether <c>vera_A</c> / <c>vera_B</c> are saved with the adapter.</summary>
    public bool SaveProjection { get; }

    /// <summary><c>vera_dropout</c>: dropout on the layer input of the adapter path (training only).</summary>
    public double VeraDropout { get; }

    /// <summary><c>d_initial</c> (default 0.1): the initial value of every <c>vera_lambda_d</c> entry.</summary>
    public double DInitial { get; }

    /// <summary>
    /// <c>fan_in_fan_out</c>: the base weight is stored in x out (GPT-2's Conv1D). As PEFT
    /// (<c>VeraModel._create_new_module</c>), the model sets it to true for a Conv1D and false for a Linear.
    /// </summary>
    public bool FanInFanOut { get; internal set; }

    /// <summary><c>bias</c>: "none", "all" (every bias trains) or "vera_only" (the adapted modules' biases); trained biases are not saved, as in PEFT 0.13.2.</summary>
    public string Bias { get; }

    /// <summary><c>init_weights</c> (default true): <c>vera_lambda_b</c> zeros and <c>vera_lambda_d</c> = d_initial; false keeps ones and standard normal.</summary>
    public bool InitWeights { get; }

    /// <inheritdoc />
    protected override void WriteTunerFields(JsonObject json)
    {
        json["r"] = R;
        json["projection_prng_key"] = ProjectionPrngKey;
        json["save_projection"] = SaveProjection;
        json["vera_dropout"] = VeraDropout;
        json["d_initial"] = DInitial;
        json["fan_in_fan_out"] = FanInFanOut;
        json["bias"] = Bias;
        json["init_weights"] = InitWeights;
    }

    // torch.Generator.manual_seed takes any 64-bit integer; a JSON integer beyond int's range is still one.
    private static long ReadSeed(JsonNode? node)
    {
        if (node is null) return 0;
        if (node is JsonValue v && v.GetValueKind() == JsonValueKind.Number && long.TryParse(v.ToJsonString(), System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out long seed) && seed >= 0)
            return seed;
        throw new TunerConfigException($"adapter config field 'projection_prng_key': expected a non-negative integer, got {node.ToJsonString()}.");
    }
}
