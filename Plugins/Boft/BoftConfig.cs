using System.Text.Json.Nodes;
using PeftHost.Abstractions.Config;

namespace PeftHost.Plugins.Boft;

/// <summary>
/// PEFT 0.13.2's <c>BOFTConfig</c>: every field by PEFT's name and default, written back in full, with the
/// checks of its <c>__post_init__</c>; fields it does not know are kept verbatim.
/// </summary>
public sealed class BoftConfig : TargetedTunerConfig
{
    /// <summary>Parses an <c>adapter_config.json</c> object.</summary>
    /// <exception cref="TunerConfigException">A field is invalid; the message names it.</exception>
    public BoftConfig(JsonObject json) : this(new ConfigFields(json)) { }

    private BoftConfig(ConfigFields fields) : base(BoftTuner.PeftTypeName, fields)
    {
        BlockSize = fields.GetInt("boft_block_size", 4);
        BlockNum = fields.GetInt("boft_block_num", 0);
        ButterflyFactor = fields.GetInt("boft_n_butterfly_factor", 1);
        Dropout = fields.GetDouble("boft_dropout", 0.0);
        FanInFanOut = fields.GetBool("fan_in_fan_out", false);
        Bias = fields.GetString("bias", "none")!;
        ModulesToSave = fields.GetStringList("modules_to_save");
        InitWeights = fields.GetBool("init_weights", true);
        UnknownFields = fields.Remaining();
        Validate();
    }

    /// <summary><c>boft_block_size</c> (default 4): the size b of each block; 0 to derive it from <see cref="BlockNum"/>.</summary>
    public int BlockSize { get; }

    /// <summary><c>boft_block_num</c> (default 0): the number of blocks D; 0 to derive it from <see cref="BlockSize"/>.</summary>
    public int BlockNum { get; }

    /// <summary>
    /// <c>boft_n_butterfly_factor</c> (default 1: plain block-diagonal OFT): the butterfly factors a new adapter gets.
    /// A loaded adapter has as many as its <c>boft_R</c> holds (PEFT without its CUDA extension silently uses 1 and
    /// still saves the requested value).
    /// </summary>
    public int ButterflyFactor { get; }

    /// <summary><c>boft_dropout</c>: in training, the fraction of blocks of one random factor replaced by the identity.</summary>
    public double Dropout { get; }

    /// <summary><c>fan_in_fan_out</c>: as PEFT, set to false when a Linear layer is adapted (Conv1D is refused).</summary>
    public bool FanInFanOut { get; internal set; }

    /// <summary>
    /// <c>bias</c>: which base biases train with the adapter: "none", "all" (every bias of the model, also saved
    /// with it) or "boft_only" (the adapted layers' biases; as PEFT 0.13.2, not saved).
    /// </summary>
    public string Bias { get; }

    /// <summary><c>modules_to_save</c>: whole modules trained and saved besides the adapter (handled by the host).</summary>
    public IReadOnlyList<string>? ModulesToSave { get; }

    /// <summary><c>init_weights</c>: true starts as a no-op (<c>boft_R</c> zeros, <c>boft_s</c> ones); false draws N(0, 0.1) and N(1, 0.1).</summary>
    public bool InitWeights { get; }

    /// <inheritdoc />
    protected override void WriteTunerFields(JsonObject json)
    {
        json["boft_block_size"] = BlockSize;
        json["boft_block_num"] = BlockNum;
        json["boft_n_butterfly_factor"] = ButterflyFactor;
        json["boft_dropout"] = Dropout;
        json["fan_in_fan_out"] = FanInFanOut;
        json["bias"] = Bias;
        json["modules_to_save"] = ModulesToSave is null ? null : new JsonArray([.. ModulesToSave.Select(s => JsonValue.Create(s))]);
        json["init_weights"] = InitWeights;
    }

    private void Validate()
    {
        // BOFTConfig.__post_init__, with PEFT's wording.
        if (BlockSize == 0 && BlockNum == 0)
            throw new TunerConfigException("adapter config fields 'boft_block_size' and 'boft_block_num': you must specify either boft_block_size or boft_block_num.");
        if (BlockSize != 0 && BlockNum != 0)
            throw new TunerConfigException(
                $"adapter config fields 'boft_block_size' and 'boft_block_num': you can only specify either boft_block_size ({BlockSize}) or boft_block_num ({BlockNum}), " +
                "but not both simultaneously, because boft_block_size x boft_block_num != in_features.");
        if (BlockSize < 0) throw new TunerConfigException($"adapter config field 'boft_block_size': must not be negative, got {BlockSize}.");
        if (BlockNum < 0) throw new TunerConfigException($"adapter config field 'boft_block_num': must not be negative, got {BlockNum}.");
        // BOFTLayer.update_layer: "You can only specify boft_n_butterfly_factor ... to be a positive integer number."
        if (ButterflyFactor < 1)
            throw new TunerConfigException($"adapter config field 'boft_n_butterfly_factor': must be a positive integer, got {ButterflyFactor}.");
        if (Dropout is < 0 or > 1) throw new TunerConfigException($"adapter config field 'boft_dropout': must be in [0, 1], got {Dropout}.");
        if (Bias is not ("none" or "all" or "boft_only"))
            throw new TunerConfigException($"adapter config field 'bias': must be 'none', 'all' or 'boft_only', got '{Bias}'.");
    }
}
