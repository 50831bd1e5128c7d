using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using PeftHost.Abstractions.Config;

namespace PeftHost.Plugins.Oft;

/// <summary>
/// PEFT 0.13.2's <c>OFTConfig</c> (with the <c>rank_pattern</c> / <c>alpha_pattern</c> of its base,
/// <c>LycorisConfig</c>): every field by PEFT's name and default, written back in full; fields it does
/// not know are kept verbatim. A config with <c>oft_block_size</c> is the OFT of PEFT 0.14 and newer, a
/// different method under the same <c>peft_type</c>, and is refused.
/// </summary>
public sealed class OftConfig : TargetedTunerConfig
{
    /// <summary>Why a file of PEFT 0.14's OFT (or newer) is not loaded.</summary>
    public const string NewerOftRefusal =
        "this adapter was written by PEFT >= 0.14's OFT, which this plugin (PEFT 0.13.2's design) does not load " +
        "(its blocks rotate the input features and it adds other tensors, so the same numbers mean another thing; PEFT 0.13.2 refuses such a file too)";

    /// <summary>Parses an <c>adapter_config.json</c> object.</summary>
    /// <exception cref="TunerConfigException">A field is invalid, or the config is a newer PEFT's OFT; the message names the field.</exception>
    public OftConfig(JsonObject json) : this(new ConfigFields(RefuseNewerOft(json))) { }

    // PEFT 0.14.0 introduced oft_block_size, which every later save writes; the key alone is the safe signal,
    // as a 0.15 file may say r: 4 exactly like a 0.13.2 one.
    private static JsonObject RefuseNewerOft(JsonObject json) => json.ContainsKey("oft_block_size")
        ? throw new TunerConfigException($"adapter config field 'oft_block_size': {NewerOftRefusal}.")
        : json;

    private OftConfig(ConfigFields fields) : base(OftTuner.PeftTypeName, fields)
    {
        R = fields.GetInt("r", 8);
        ModuleDropout = fields.GetDouble("module_dropout", 0.0);
        InitWeights = fields.GetBool("init_weights", true);
        Coft = fields.GetBool("coft", false);
        Eps = fields.GetDouble("eps", 6e-5);
        BlockShare = fields.GetBool("block_share", false);
        RankPattern = fields.GetNumberMap("rank_pattern");
        AlphaPattern = fields.GetNumberMap("alpha_pattern");
        ModulesToSave = fields.GetStringList("modules_to_save");
        UnknownFields = fields.Remaining();
        Validate();
    }

    /// <summary><c>r</c> (default 8): the number of diagonal blocks over the output features.</summary>
    public int R { get; }

    /// <summary><c>module_dropout</c>: in training, the probability of skipping the adapter for a forward pass.</summary>
    public double ModuleDropout { get; }

    /// <summary><c>init_weights</c>: true starts as the identity rotation (<c>oft_r</c> zeros); false makes <c>oft_r</c> random.</summary>
    public bool InitWeights { get; }

    /// <summary><c>coft</c>: constrained OFT, each block projected into a ball of radius set by <see cref="Eps"/> before use.</summary>
    public bool Coft { get; }

    /// <summary><c>eps</c> (default 6e-5): the COFT radius factor (times the block size squared).</summary>
    public double Eps { get; }

    /// <summary><c>block_share</c>: one block shared by all r positions.</summary>
    public bool BlockShare { get; }

    /// <summary><c>rank_pattern</c>: module name pattern → number of blocks, in file order.</summary>
    public IReadOnlyDictionary<string, double> RankPattern { get; }

    /// <summary><c>alpha_pattern</c>: inherited by PEFT's config from <c>LycorisConfig</c>; saved, without effect (OFT has no alpha).</summary>
    public IReadOnlyDictionary<string, double> AlphaPattern { get; }

    /// <summary><c>modules_to_save</c>: whole modules trained and saved besides the adapter (handled by the host).</summary>
    public IReadOnlyList<string>? ModulesToSave { get; }

    /// <summary>
    /// The number of blocks of the module at <paramref name="path"/>, by PEFT's rule (<c>OFTModel._create_and_replace</c>):
    /// the first key of <c>rank_pattern</c> for which <c>re.match(rf"(.*\.)?{key}$", path)</c> holds, else <c>r</c>.
    /// </summary>
    public int RankOf(string path)
    {
        string key = RankPattern.Keys.FirstOrDefault(k => MatchesAtStart(path, k)) ?? path[(path.LastIndexOf('.') + 1)..];
        return RankPattern.TryGetValue(key, out double rank) ? (int)rank : R;
    }

    // Python's re.match: the pattern must match at the start of the path (the key is not grouped, as in PEFT).
    private static bool MatchesAtStart(string path, string key)
    {
        Match m = Regex.Match(path, @"(.*\.)?" + key + "$", RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));
        return m.Success && m.Index == 0;
    }

    /// <inheritdoc />
    protected override void WriteTunerFields(JsonObject json)
    {
        json["r"] = R;
        json["module_dropout"] = ModuleDropout;
        json["init_weights"] = InitWeights;
        json["modules_to_save"] = ModulesToSave is null ? null : new JsonArray([.. ModulesToSave.Select(s => JsonValue.Create(s))]);
        json["coft"] = Coft;
        json["eps"] = Eps;
        json["block_share"] = BlockShare;
        json["rank_pattern"] = Map(RankPattern);
        json["alpha_pattern"] = Map(AlphaPattern);
    }

    private void Validate()
    {
        // PEFT checks r in OFTLayer.update_layer ("`r` should be a positive integer value but the value passed is 0").
        if (R <= 0) throw new TunerConfigException($"adapter config field 'r': must be a positive integer (the number of blocks), got {R}.");
        if (ModuleDropout is < 0 or > 1) throw new TunerConfigException($"adapter config field 'module_dropout': must be in [0, 1], got {ModuleDropout}.");
        if (Eps < 0) throw new TunerConfigException($"adapter config field 'eps': must not be negative, got {Eps}.");
        foreach ((string key, double rank) in RankPattern)
            if (rank <= 0 || rank != Math.Floor(rank) || rank > int.MaxValue)
                throw new TunerConfigException($"adapter config field 'rank_pattern.{key}': must be a positive integer, got {rank}.");
        foreach (string key in RankPattern.Keys)
        {
            try { _ = new Regex(key); }
            catch (ArgumentException e) { throw new TunerConfigException($"adapter config field 'rank_pattern': key '{key}' is not a valid regular expression: {e.Message}"); }
        }
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
