using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using PeftHost.Abstractions.Config;

namespace PeftHost.Plugins.Loha;

/// <summary>
/// PEFT 0.13.2's <c>LoHaConfig</c> (with the <c>rank_pattern</c> / <c>alpha_pattern</c> of its base,
/// <c>LycorisConfig</c>): every field by PEFT's name and default, written back in full; fields it does
/// not know are kept verbatim.
/// </summary>
public sealed class LoHaConfig : TargetedTunerConfig
{
    /// <summary>Parses an <c>adapter_config.json</c> object.</summary>
    /// <exception cref="TunerConfigException">A field is invalid; the message names it.</exception>
    public LoHaConfig(JsonObject json) : this(new ConfigFields(json)) { }

    private LoHaConfig(ConfigFields fields) : base(LoHaTuner.PeftTypeName, fields)
    {
        R = fields.GetInt("r", 8);
        Alpha = fields.GetDouble("alpha", 8);
        RankDropout = fields.GetDouble("rank_dropout", 0.0);
        ModuleDropout = fields.GetDouble("module_dropout", 0.0);
        UseEffectiveConv2d = fields.GetBool("use_effective_conv2d", false);
        InitWeights = fields.GetBool("init_weights", true);
        RankPattern = fields.GetNumberMap("rank_pattern");
        AlphaPattern = fields.GetNumberMap("alpha_pattern");
        ModulesToSave = fields.GetStringList("modules_to_save");
        UnknownFields = fields.Remaining();
        Validate();
    }

    /// <summary><c>r</c> (default 8): the rank of each of the two factor pairs.</summary>
    public int R { get; }

    /// <summary><c>alpha</c> (default 8): the scaling is alpha / r.</summary>
    public double Alpha { get; }

    /// <summary><c>rank_dropout</c>: in training, the probability of dropping a row of the weight change.</summary>
    public double RankDropout { get; }

    /// <summary><c>module_dropout</c>: in training, the probability of skipping the adapter for a forward pass.</summary>
    public double ModuleDropout { get; }

    /// <summary><c>use_effective_conv2d</c>: PEFT's CP decomposition for Conv2d kernels; kept and written back, no effect on Linear layers.</summary>
    public bool UseEffectiveConv2d { get; }

    /// <summary><c>init_weights</c>: true starts as a no-op (<c>hada_w2_b</c> zeros); false makes all four factors random.</summary>
    public bool InitWeights { get; }

    /// <summary><c>rank_pattern</c>: module name pattern → rank, in file order.</summary>
    public IReadOnlyDictionary<string, double> RankPattern { get; }

    /// <summary><c>alpha_pattern</c>: module name pattern → alpha, in file order.</summary>
    public IReadOnlyDictionary<string, double> AlphaPattern { get; }

    /// <summary><c>modules_to_save</c>: whole modules trained and saved besides the adapter (handled by the host).</summary>
    public IReadOnlyList<string>? ModulesToSave { get; }

    /// <summary>
    /// The rank and alpha of the module at <paramref name="path"/>, by PEFT's rule
    /// (<c>LoHaModel._create_and_replace</c>): the first key of <c>rank_pattern</c> then <c>alpha_pattern</c>
    /// for which <c>re.match(rf"(.*\.)?{key}$", path)</c> holds gives both entries (else the module's own
    /// name), each falling back to <c>r</c> / <c>alpha</c>.
    /// </summary>
    public (int R, double Alpha) RankAndAlpha(string path)
    {
        string key = RankPattern.Keys.Concat(AlphaPattern.Keys).FirstOrDefault(k => MatchesAtStart(path, k)) ?? path[(path.LastIndexOf('.') + 1)..];
        int r = RankPattern.TryGetValue(key, out double rank) ? (int)rank : R;
        double alpha = AlphaPattern.TryGetValue(key, out double a) ? a : Alpha;
        return (r, alpha);
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
        json["init_weights"] = InitWeights;
        json["rank_pattern"] = Map(RankPattern);
        json["alpha_pattern"] = Map(AlphaPattern);
        json["modules_to_save"] = ModulesToSave is null ? null : new JsonArray([.. ModulesToSave.Select(s => JsonValue.Create(s))]);
    }

    private void Validate()
    {
        // PEFT checks r in LoHaLayer.update_layer ("`r` should be a positive integer value ...").
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
