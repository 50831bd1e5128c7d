using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using PeftHost.Abstractions.Config;

namespace PeftHost.Plugins.Lokr;

/// <summary>
/// PEFT 0.13.2's <c>LoKrConfig</c> (with the <c>rank_pattern</c> / <c>alpha_pattern</c> of its base,
/// <c>LycorisConfig</c>): every field by PEFT's name and default, written back in full; fields it does
/// not know are kept verbatim. A config of PEFT 0.14 or newer (its <c>rank_dropout_scale</c> field) is
/// refused: those versions scale the weight change by alpha / r, which 0.13.2 never does, so the same
/// file would give other numbers here.
/// </summary>
public sealed class LoKrConfig : TargetedTunerConfig
{
    /// <summary>Parses an <c>adapter_config.json</c> object.</summary>
    /// <exception cref="TunerConfigException">A field is invalid, or the config is a newer PEFT's LoKr; the message names the field.</exception>
    public LoKrConfig(JsonObject json) : this(new ConfigFields(RefuseNewerLoKr(json))) { }

    // PEFT 0.14.0 (#2180, "FIX Several bugs in LoKr") added rank_dropout_scale, which every later save writes.
    private static JsonObject RefuseNewerLoKr(JsonObject json) => json.ContainsKey("rank_dropout_scale")
        ? throw new TunerConfigException(
            "adapter config field 'rank_dropout_scale': this adapter was written by PEFT >= 0.14's LoKr, which scales the weight change by alpha / r; " +
            "this plugin (PEFT 0.13.2's design, where alpha has no effect) does not load it, as its numbers would differ (PEFT 0.13.2 refuses such a file too).")
        : json;

    private LoKrConfig(ConfigFields fields) : base(LoKrTuner.PeftTypeName, fields)
    {
        R = fields.GetInt("r", 8);
        Alpha = fields.GetDouble("alpha", 8);
        RankDropout = fields.GetDouble("rank_dropout", 0.0);
        ModuleDropout = fields.GetDouble("module_dropout", 0.0);
        UseEffectiveConv2d = fields.GetBool("use_effective_conv2d", false);
        DecomposeBoth = fields.GetBool("decompose_both", false);
        DecomposeFactor = fields.GetInt("decompose_factor", -1);
        InitWeights = fields.GetBool("init_weights", true);
        RankPattern = fields.GetNumberMap("rank_pattern");
        AlphaPattern = fields.GetNumberMap("alpha_pattern");
        ModulesToSave = fields.GetStringList("modules_to_save");
        UnknownFields = fields.Remaining();
        Validate();
    }

    /// <summary><c>r</c> (default 8): the rank of a factor that is decomposed.</summary>
    public int R { get; }

    /// <summary>
    /// <c>alpha</c> (default 8): stored and written back, but without effect, as in PEFT 0.13.2
    /// (<c>get_delta_weight</c> never applies <c>alpha / r</c>).
    /// </summary>
    public double Alpha { get; }

    /// <summary><c>rank_dropout</c>: in training, the probability of dropping a row of the weight change.</summary>
    public double RankDropout { get; }

    /// <summary><c>module_dropout</c>: in training, the probability of skipping the adapter for a forward pass.</summary>
    public double ModuleDropout { get; }

    /// <summary><c>use_effective_conv2d</c>: PEFT's CP decomposition for Conv2d kernels; kept and written back, forced off for Linear layers as in PEFT.</summary>
    public bool UseEffectiveConv2d { get; }

    /// <summary><c>decompose_both</c>: also decompose the left factor <c>lokr_w1</c> into <c>lokr_w1_a</c> · <c>lokr_w1_b</c> when r is small enough.</summary>
    public bool DecomposeBoth { get; }

    /// <summary><c>decompose_factor</c> (default -1): the factor each dimension is split by (-1: near its square root; see <see cref="LoKrLinear.Factorization"/>).</summary>
    public int DecomposeFactor { get; }

    /// <summary><c>init_weights</c>: true starts as a no-op (the left factor zeros); false makes every factor random.</summary>
    public bool InitWeights { get; }

    /// <summary><c>rank_pattern</c>: module name pattern → rank, in file order.</summary>
    public IReadOnlyDictionary<string, double> RankPattern { get; }

    /// <summary><c>alpha_pattern</c>: module name pattern → alpha, in file order (stored; alpha has no effect).</summary>
    public IReadOnlyDictionary<string, double> AlphaPattern { get; }

    /// <summary><c>modules_to_save</c>: whole modules trained and saved besides the adapter (handled by the host).</summary>
    public IReadOnlyList<string>? ModulesToSave { get; }

    /// <summary>
    /// The rank of the module at <paramref name="path"/>, by PEFT's rule (<c>LoKrModel._create_and_replace</c>):
    /// the first key of <c>rank_pattern</c> then <c>alpha_pattern</c> for which <c>re.match(rf"(.*\.)?{key}$", path)</c>
    /// holds (else the module's own name) is looked up in <c>rank_pattern</c>, falling back to <c>r</c>.
    /// </summary>
    public int RankOf(string path)
    {
        string key = RankPattern.Keys.Concat(AlphaPattern.Keys).FirstOrDefault(k => MatchesAtStart(path, k)) ?? path[(path.LastIndexOf('.') + 1)..];
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
        json["alpha"] = Number(Alpha);
        json["rank_dropout"] = RankDropout;
        json["module_dropout"] = ModuleDropout;
        json["use_effective_conv2d"] = UseEffectiveConv2d;
        json["decompose_both"] = DecomposeBoth;
        json["decompose_factor"] = DecomposeFactor;
        json["init_weights"] = InitWeights;
        json["rank_pattern"] = Map(RankPattern);
        json["alpha_pattern"] = Map(AlphaPattern);
        json["modules_to_save"] = ModulesToSave is null ? null : new JsonArray([.. ModulesToSave.Select(s => JsonValue.Create(s))]);
    }

    private void Validate()
    {
        // PEFT checks r in LoKrLayer.update_layer ("`r` should be a positive integer value ...").
        if (R <= 0) throw new TunerConfigException($"adapter config field 'r': must be a positive integer, got {R}.");
        if (RankDropout is < 0 or > 1) throw new TunerConfigException($"adapter config field 'rank_dropout': must be in [0, 1], got {RankDropout}.");
        if (ModuleDropout is < 0 or > 1) throw new TunerConfigException($"adapter config field 'module_dropout': must be in [0, 1], got {ModuleDropout}.");
        foreach ((string key, double rank) in RankPattern)
            if (rank <= 0 || rank != Math.Floor(rank) || rank > int.MaxValue)
                throw new TunerConfigException($"adapter config field 'rank_pattern.{key}': must be a positive integer, got {rank}.");
        foreach (string key in RankPattern.Keys.Concat(AlphaPattern.Keys))
        {
            try { _ = new Regex(key); }
            catch (ArgumentException e) { throw new TunerConfigException($"adapter config field '{(RankPattern.ContainsKey(key) ? "rank_pattern" : "alpha_pattern")}': key '{key}' is not a valid regular expression: {e.Message}"); }
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
