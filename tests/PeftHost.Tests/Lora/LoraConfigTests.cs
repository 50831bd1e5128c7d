using System.Text.Json.Nodes;
using PeftHost.Abstractions.Config;
using PeftHost.Tests.Support;
using Xunit;
using static PeftHost.Tests.Lora.LoraHarness;

namespace PeftHost.Tests.Lora;

public class LoraConfigTests
{
    private static readonly string[] Peft013Fields =
    [
        "r", "target_modules", "lora_alpha", "lora_dropout", "fan_in_fan_out", "bias", "use_rslora", "modules_to_save",
        "init_lora_weights", "layers_to_transform", "layers_pattern", "rank_pattern", "alpha_pattern", "megatron_config",
        "megatron_core", "loftq_config", "use_dora", "layer_replication",
    ];

    [Fact]
    public void Every_peft_0_13_field_is_written_with_peft_defaults_and_no_newer_field_unless_set()
    {
        JsonObject json = Tuner.ParseConfig(Config(("target_modules", List("q_proj")))).ToJson();
        foreach (string field in Peft013Fields) Assert.True(json.ContainsKey(field), field);
        Assert.Equal(8, json["r"]!.GetValue<int>());
        Assert.Equal(8, json["lora_alpha"]!.GetValue<long>());
        Assert.Equal(0.0, json["lora_dropout"]!.GetValue<double>());
        Assert.False(json["fan_in_fan_out"]!.GetValue<bool>());
        Assert.Equal("none", json["bias"]!.GetValue<string>());
        Assert.False(json["use_rslora"]!.GetValue<bool>());
        Assert.True(json["init_lora_weights"]!.GetValue<bool>());
        Assert.Null(json["modules_to_save"]);
        Assert.Null(json["layers_to_transform"]);
        Assert.Null(json["layers_pattern"]);
        Assert.Empty(json["rank_pattern"]!.AsObject());
        Assert.Empty(json["alpha_pattern"]!.AsObject());
        Assert.Null(json["megatron_config"]);
        Assert.Equal("megatron.core", json["megatron_core"]!.GetValue<string>());
        Assert.Empty(json["loftq_config"]!.AsObject());
        Assert.False(json["use_dora"]!.GetValue<bool>());
        Assert.Null(json["layer_replication"]);
        foreach (string newer in new[] { "exclude_modules", "lora_bias", "use_qalora", "eva_config", "corda_config", "trainable_token_indices" })
            Assert.False(json.ContainsKey(newer), newer);
    }

    [Fact]
    public void Round_trip_keeps_unknown_fields_verbatim_and_newer_fields_only_when_set()
    {
        JsonObject input = Config(
            ("target_modules", List("q_proj", "v_proj")), ("r", 4), ("lora_alpha", 16), ("use_rslora", true), ("use_dora", true),
            ("init_lora_weights", "pissa_niter_4"), ("rank_pattern", new JsonObject { ["q_proj"] = 2 }), ("alpha_pattern", new JsonObject { ["v_proj"] = 2.5 }),
            ("layers_to_transform", new JsonArray(0, 1)), ("layers_pattern", "layers"), ("modules_to_save", List("lm_head")),
            ("exclude_modules", List("lm_head")), ("lora_bias", false), ("use_qalora", false), ("eva_config", null), ("ensure_weight_tying", true),
            ("future_field", new JsonObject { ["nested"] = new JsonArray(1, "two") }), ("auto_mapping", null));
        JsonObject once = Tuner.ParseConfig(input).ToJson();
        Assert.Equal("""{"nested":[1,"two"]}""", once["future_field"]!.ToJsonString());
        Assert.Equal("""["lm_head"]""", once["exclude_modules"]!.ToJsonString());
        Assert.True(once["ensure_weight_tying"]!.GetValue<bool>());
        Assert.False(once.ContainsKey("lora_bias"));
        Assert.False(once.ContainsKey("use_qalora"));
        Assert.False(once.ContainsKey("eva_config"));
        Assert.Equal("pissa_niter_4", once["init_lora_weights"]!.GetValue<string>());
        Assert.Equal("""{"q_proj":2}""", once["rank_pattern"]!.ToJsonString());
        Assert.Equal("""{"v_proj":2.5}""", once["alpha_pattern"]!.ToJsonString());
        Assert.Equal("[0,1]", once["layers_to_transform"]!.ToJsonString());
        Assert.Equal("\"layers\"", once["layers_pattern"]!.ToJsonString());
        JsonObject twice = Tuner.ParseConfig(JsonNode.Parse(once.ToJsonString())!.AsObject()).ToJson();
        Assert.Equal(once.ToJsonString(), twice.ToJsonString());
    }

    [Fact]
    public void The_conformance_adapter_config_written_by_peft_parses_and_round_trips()
    {
        string path = Conformance.Case(Path.Combine("lora_qv", "adapter", "adapter_config.json"));
        JsonObject original = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        JsonObject written = Tuner.ParseConfig(original).ToJson();
        Assert.Equal(original.Select(p => p.Key).Order(StringComparer.Ordinal), written.Select(p => p.Key).Order(StringComparer.Ordinal));
        foreach ((string key, JsonNode? value) in original)
            Assert.True(JsonNode.DeepEquals(Normalise(value), Normalise(written[key])), $"{key}: {value?.ToJsonString()} vs {written[key]?.ToJsonString()}");
    }

    [Theory]
    [InlineData("r", "0")]
    [InlineData("lora_dropout", "1.5")]
    [InlineData("bias", "\"some\"")]
    [InlineData("init_lora_weights", "\"loftq\"")]
    [InlineData("init_lora_weights", "\"svd\"")]
    [InlineData("lora_bias", "true")]
    [InlineData("use_qalora", "true")]
    [InlineData("layer_replication", "[[0, 1]]")]
    public void Invalid_fields_are_refused_by_name(string field, string value)
    {
        JsonObject json = Config(("target_modules", List("q_proj")));
        json[field] = JsonNode.Parse(value);
        var e = Assert.Throws<TunerConfigException>(() => Tuner.ParseConfig(json));
        Assert.Contains($"'{field}'", e.Message);
    }

    [Fact]
    public void Layer_filters_with_a_regex_target_and_bad_rank_patterns_are_refused_by_name()
    {
        var e = Assert.Throws<TunerConfigException>(() => Tuner.ParseConfig(Config(("target_modules", ".*q_proj"), ("layers_to_transform", 0))));
        Assert.Contains("'layers_to_transform'", e.Message);
        e = Assert.Throws<TunerConfigException>(() => Tuner.ParseConfig(Config(("target_modules", ".*q_proj"), ("layers_pattern", "layers"))));
        Assert.Contains("'layers_pattern'", e.Message);
        e = Assert.Throws<TunerConfigException>(() => Tuner.ParseConfig(Config(("target_modules", List("q_proj")), ("rank_pattern", new JsonObject { ["q_proj"] = 2.5 }))));
        Assert.Contains("'rank_pattern.q_proj'", e.Message);
    }

    // Numbers compare by value (PEFT writes 0.0 where we may write 0).
    private static JsonNode? Normalise(JsonNode? node) => node is JsonValue v && v.GetValueKind() == System.Text.Json.JsonValueKind.Number
        ? JsonValue.Create(double.Parse(v.ToJsonString(), System.Globalization.CultureInfo.InvariantCulture))
        : node?.DeepClone();
}
