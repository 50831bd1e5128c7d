using System.Text.Json.Nodes;
using PeftHost.Abstractions.Config;
using PeftHost.Abstractions.Tuning;
using PeftHost.Tests.Support;
using TorchSharp;
using Xunit;
using static PeftHost.Tests.Lora.LoraHarness;
using static TorchSharp.torch;

namespace PeftHost.Tests.Lora;

/// <summary>Which modules are adapted, with which rank and alpha, and which parameters train.</summary>
public class LoraTargetingTests
{
    private static string[] Adapted(nn.Module model) =>
        model.named_modules().Where(m => m.name.EndsWith(".lora_dropout", StringComparison.Ordinal)).Select(m => m.name[..^".lora_dropout".Length]).Order(StringComparer.Ordinal).ToArray();

    [Fact]
    public void All_linear_takes_linear_and_conv1d_but_not_the_lm_head_or_the_embedding()
    {
        var model = new TinyLm();
        using ITunerModel tuner = Apply(model, Config(("target_modules", "all-linear")));
        Assert.Equal(["layers.0.c_fc", "layers.0.q_proj", "layers.0.v_proj", "layers.1.c_fc", "layers.1.q_proj", "layers.1.v_proj"], Adapted(model));
    }

    [Fact]
    public void Exclude_modules_removes_matches_from_the_targets()
    {
        var model = new TinyLm();
        using ITunerModel tuner = Apply(model, Config(("target_modules", "all-linear"), ("exclude_modules", List("v_proj", "layers.1.c_fc"))));
        Assert.Equal(["layers.0.c_fc", "layers.0.q_proj", "layers.1.q_proj"], Adapted(model));
        using var state = tuner.ExportAdapter("default");
        Assert.Equal("""["v_proj","layers.1.c_fc"]""", state.Config["exclude_modules"]!.ToJsonString());
    }

    [Fact]
    public void Layers_to_transform_keeps_only_those_layer_indices()
    {
        var model = new TinyLm();
        using ITunerModel tuner = Apply(model, Config(("target_modules", List("q_proj", "v_proj")), ("layers_to_transform", 1), ("layers_pattern", "layers")));
        Assert.Equal(["layers.1.q_proj", "layers.1.v_proj"], Adapted(model));
    }

    [Fact]
    public void A_regex_target_must_match_the_whole_path()
    {
        var model = new TinyLm();
        using ITunerModel tuner = Apply(model, Config(("target_modules", @"layers\.0\.(q|v)_proj|embed")));
        Assert.Equal(["embed", "layers.0.q_proj", "layers.0.v_proj"], Adapted(model));
    }

    [Fact]
    public void Rank_and_alpha_patterns_apply_by_the_end_of_the_module_path()
    {
        var model = new TinyLm();
        using var v1 = Copy(model, "layers.1.v_proj.weight");
        using ITunerModel tuner = Apply(model, Config(("target_modules", List("q_proj", "v_proj")), ("r", 4), ("lora_alpha", 8), ("init_lora_weights", false),
            ("rank_pattern", new JsonObject { ["q_proj"] = 2 }), ("alpha_pattern", new JsonObject { ["layers.1.v_proj"] = 32 })));
        var p = Params(model);
        Assert.Equal([2L, 6L], p["layers.0.q_proj.lora_A.default.weight"].shape);
        Assert.Equal([6L, 2L], p["layers.1.q_proj.lora_B.default.weight"].shape);
        Assert.Equal([4L, 6L], p["layers.0.v_proj.lora_A.default.weight"].shape);
        Assert.Equal([4L, 6L], p["layers.1.v_proj.lora_A.default.weight"].shape);
        tuner.Merge(["default"], safeMerge: false);
        using var expected = v1 + p["layers.1.v_proj.lora_B.default.weight"].matmul(p["layers.1.v_proj.lora_A.default.weight"]) * (32.0 / 4);
        Assert.True(Diff(p["layers.1.v_proj.base_layer.weight"], expected) < 1e-5);
    }

    [Fact]
    public void A_matched_module_of_another_type_is_a_clear_error_and_nothing_is_applied()
    {
        var model = new TinyLm();
        ITunerModel tuner = Attach(model);
        var e = Assert.Throws<TunerConfigException>(() => tuner.AddAdapter("default", Tuner.ParseConfig(Config(("target_modules", List("q_proj", "layers.0"))))));
        Assert.Contains("layers.0", e.Message);
        Assert.Contains("not supported", e.Message);
        Assert.Empty(Adapted(model));
        Assert.Empty(tuner.Adapters);
    }

    [Theory]
    [InlineData("none", new string[0])]
    [InlineData("all", new[] { "layers.0.c_fc.bias", "layers.0.q_proj.base_layer.bias", "layers.0.v_proj.bias", "layers.1.c_fc.bias", "layers.1.q_proj.base_layer.bias", "layers.1.v_proj.bias", "lm_head.bias" })]
    [InlineData("lora_only", new[] { "layers.0.q_proj.base_layer.bias", "layers.1.q_proj.base_layer.bias" })]
    public void Bias_modes_train_the_biases_peft_trains(string bias, string[] biases)
    {
        var model = new TinyLm();
        using ITunerModel tuner = Apply(model, Config(("target_modules", List("q_proj")), ("bias", bias)));
        string[] lora = ["layers.0.q_proj.lora_A.default.weight", "layers.0.q_proj.lora_B.default.weight", "layers.1.q_proj.lora_A.default.weight", "layers.1.q_proj.lora_B.default.weight"];
        Assert.Equal(lora.Concat(biases).Order(StringComparer.Ordinal), Trainable(model));

        tuner.DeleteAdapter("default");
        Assert.Empty(Trainable(model));
    }

    [Fact]
    public void Only_active_adapters_train_and_a_second_adapter_with_bias_is_refused()
    {
        var model = new TinyLm();
        using ITunerModel tuner = Apply(model, Config(("target_modules", List("q_proj")), ("bias", "lora_only")), "a");
        tuner.AddAdapter("b", Tuner.ParseConfig(Config(("target_modules", List("v_proj")), ("use_dora", true))));
        Assert.DoesNotContain(Trainable(model), n => n.Contains(".b.", StringComparison.Ordinal));
        tuner.SetActiveAdapters(["b"]);
        Assert.Equal(["layers.0.v_proj.lora_A.b.weight", "layers.0.v_proj.lora_B.b.weight", "layers.0.v_proj.lora_magnitude_vector.b.weight",
            "layers.1.v_proj.lora_A.b.weight", "layers.1.v_proj.lora_B.b.weight", "layers.1.v_proj.lora_magnitude_vector.b.weight"], Trainable(model));

        var e = Assert.Throws<TunerConfigException>(() => tuner.AddAdapter("c", Tuner.ParseConfig(Config(("target_modules", List("q_proj")), ("bias", "all")))));
        Assert.Contains("'bias'", e.Message);
        Assert.Equal(["a", "b"], tuner.Adapters);

        tuner.AddAdapter("frozen", Tuner.ParseConfig(Config(("target_modules", List("q_proj")), ("inference_mode", true))));
        tuner.SetActiveAdapters(["frozen"]);
        Assert.Empty(Trainable(model));
    }
}
