using System.Text.Json.Nodes;
using PeftHost.Abstractions.Config;
using PeftHost.Engine.Peft;
using PeftHost.Engine.Plugins;
using PeftHost.Tests.PeftReference;
using PeftHost.Tests.Support;
using Xunit;
using static TorchSharp.torch;

namespace PeftHost.Tests.Methods;

/// <summary>
/// The configs of the LoHa, LoKr, OFT and BOFT plugins: PEFT 0.13.2's fields and defaults (from its
/// dataclasses: tuners/&lt;method&gt;/config.py), unknown fields kept, and what PEFT refuses refused with a
/// message naming the field, the module or the reason (tests/fixtures/peft/refusals_0132 and the newer OFT files).
/// </summary>
public class LycorisAndOftConfigTests
{
    // PEFT 0.13.2's defaults of each config's own fields (dataclass field defaults).
    public static TheoryData<string, string, string> Defaults => new()
    {
        { "LOHA", "loha_llama", """{"r": 8, "alpha": 8, "rank_dropout": 0.0, "module_dropout": 0.0, "use_effective_conv2d": false, "init_weights": true, "rank_pattern": {}, "alpha_pattern": {}, "modules_to_save": null, "layers_to_transform": null, "layers_pattern": null}""" },
        { "LOKR", "lokr_llama", """{"r": 8, "alpha": 8, "rank_dropout": 0.0, "module_dropout": 0.0, "use_effective_conv2d": false, "decompose_both": false, "decompose_factor": -1, "init_weights": true, "rank_pattern": {}, "alpha_pattern": {}, "modules_to_save": null, "layers_to_transform": null, "layers_pattern": null}""" },
        { "OFT", "oft_llama", """{"r": 8, "module_dropout": 0.0, "init_weights": true, "coft": false, "eps": 6e-05, "block_share": false, "rank_pattern": {}, "alpha_pattern": {}, "modules_to_save": null, "layers_to_transform": null, "layers_pattern": null}""" },
        { "BOFT", "boft_llama", """{"boft_block_size": 4, "boft_block_num": 0, "boft_n_butterfly_factor": 1, "boft_dropout": 0.0, "fan_in_fan_out": false, "bias": "none", "init_weights": true, "modules_to_save": null, "layers_to_transform": null, "layers_pattern": null}""" },
    };

    [Theory]
    [MemberData(nameof(Defaults))]
    public void A_minimal_config_gets_peft_defaults_and_the_fields_peft_saves(string peftType, string caseName, string defaults)
    {
        using PluginCatalog catalog = PeftCase.Catalog();
        var c = new PeftCase(caseName);
        using var model = c.LoadBase();
        using var peft = new PeftModel(model, catalog);
        peft.AddAdapter("default", new JsonObject { ["peft_type"] = peftType, ["target_modules"] = new JsonArray("q_proj") });
        using var state = peft.ExportAdapter("default");
        JsonObject config = state.Config;

        foreach ((string key, JsonNode? value) in JsonNode.Parse(defaults)!.AsObject())
            Assert.True(JsonNode.DeepEquals(Number(value), Number(config[key])),
                $"{peftType} field '{key}': PEFT's default {value?.ToJsonString() ?? "null"}, ours {config[key]?.ToJsonString() ?? "null"}");
        // Every field PEFT's save writes (auto_mapping, which PEFT fills in itself, aside).
        var peftKeys = ((JsonObject)c.Meta["adapter_config_saved"]!["adapter"]!["adapter_config.json"]!).Select(p => p.Key).Where(k => k != "auto_mapping");
        Assert.Equal(peftKeys.Order(StringComparer.Ordinal), config.Select(p => p.Key).Order(StringComparer.Ordinal));
    }

    // 8 and 8.0 are one number to PEFT's JSON reader.
    private static JsonNode? Number(JsonNode? node) =>
        node is JsonValue v && v.GetValueKind() == System.Text.Json.JsonValueKind.Number
            ? JsonValue.Create(double.Parse(v.ToJsonString(), System.Globalization.CultureInfo.InvariantCulture))
            : node;

    [Theory]
    [InlineData("LOHA")]
    [InlineData("LOKR")]
    [InlineData("OFT")]
    [InlineData("BOFT")]
    public void Unknown_fields_are_kept_and_written_back(string peftType)
    {
        using PluginCatalog catalog = PeftCase.Catalog();
        using var peft = new PeftModel(new TwoBlocks(), catalog);
        peft.AddAdapter("default", new JsonObject
        {
            ["peft_type"] = peftType, ["target_modules"] = new JsonArray("q_proj"), ["r"] = 2, ["boft_block_size"] = 2,
            ["a_future_field"] = new JsonObject { ["x"] = 1 },
        });
        using var state = peft.ExportAdapter("default");
        Assert.Equal(1, state.Config["a_future_field"]!["x"]!.GetValue<int>());
    }

    [Theory]
    [InlineData("LOHA", "Target module of type Conv1D not supported, currently only adapters for Conv2d, Linear are supported")]
    [InlineData("LOKR", "Target module of type Conv1D not supported, currently only adapters for Conv2d, Linear are supported")]
    [InlineData("OFT", "Target module of type Conv1D not supported, currently only adapters for Conv2d, Linear are supported")]
    [InlineData("BOFT", "Target module Conv1D() is not supported. Currently, only `torch.nn.Linear` and `torch.nn.Conv2d` are supported.")]
    public void GPT2_Conv1D_is_refused_with_peft_reason_and_nothing_changes(string peftType, string peftMessage)
    {
        using PluginCatalog catalog = PeftCase.Catalog();
        using var model = new PeftCase("vera_gpt2_conv1d").LoadBase();
        var before = model.named_parameters().Select(p => p.name).ToList();
        using var peft = new PeftModel(model, catalog);
        var e = Assert.Throws<TunerConfigException>(() => peft.AddAdapter("default", new JsonObject
        {
            ["peft_type"] = peftType, ["target_modules"] = new JsonArray("c_attn"), ["r"] = 4, ["boft_block_size"] = 4,
        }));
        Assert.Contains("transformer.h.0.attn.c_attn", e.Message);
        Assert.Contains("Conv1D", e.Message);
        Assert.Contains(peftMessage, e.Message);
        Assert.Empty(peft.Adapters);
        Assert.Equal(before, model.named_parameters().Select(p => p.name).ToList());
    }

    [Theory]
    [InlineData("oft_peft015_refused")]
    [InlineData("oft_peft017_refused")]
    public void Newer_peft_oft_files_are_recognised_and_refused_with_the_reason(string caseName)
    {
        var c = new PeftCase(caseName);
        using PluginCatalog catalog = PeftCase.Catalog();
        using var model = c.LoadBase();
        var e = Assert.Throws<TunerConfigException>(() => PeftModel.FromPretrained(model, c.AdapterDir(), catalog));
        Assert.Contains("'oft_block_size'", e.Message);
        Assert.Contains("written by PEFT >= 0.14's OFT, which this plugin (PEFT 0.13.2's design) does not load", e.Message);
    }

    [Fact]
    public void Newer_oft_tensors_without_the_config_key_are_refused_too()
    {
        // A 0.15 file whose config lost oft_block_size (it looks like 0.13.2's r 4 config): its oft_s tensors still say what it is.
        var c = new PeftCase("oft_peft015_refused");
        using PluginCatalog catalog = PeftCase.Catalog();
        using var model = c.LoadBase();
        using var peft = new PeftModel(model, catalog);
        var folder = AdapterFolder.Read(c.AdapterDir(), "default");
        folder.Config.Remove("oft_block_size");
        foreach (string key in (string[])["bias", "fan_in_fan_out", "exclude_modules"]) folder.Config.Remove(key);
        using (folder)
        {
            var e = Assert.Throws<TunerConfigException>(() => peft.ImportAdapter(folder));
            Assert.Contains("oft_s", e.Message);
            Assert.Contains("written by PEFT >= 0.14's OFT", e.Message);
        }
        Assert.Empty(peft.Adapters);
    }

    [Fact]
    public void A_lokr_config_of_peft_0_14_or_newer_is_refused_as_its_alpha_scaling_differs()
    {
        using PluginCatalog catalog = PeftCase.Catalog();
        using var peft = new PeftModel(new TwoBlocks(), catalog);
        var e = Assert.Throws<TunerConfigException>(() => peft.AddAdapter("default", new JsonObject
        {
            ["peft_type"] = "LOKR", ["target_modules"] = new JsonArray("q_proj"), ["rank_dropout_scale"] = false,
        }));
        Assert.Contains("'rank_dropout_scale'", e.Message);
        Assert.Contains("PEFT >= 0.14", e.Message);
    }

    // refusals_0132/meta.json: what PEFT 0.13.2 raised for each; our message carries PEFT's wording and names the field or module.
    [Theory]
    [InlineData("""{"peft_type": "BOFT", "target_modules": ["q_proj"], "boft_block_size": 4, "boft_block_num": 8}""", "you can only specify either boft_block_size (4) or boft_block_num (8), but not both simultaneously, because boft_block_size x boft_block_num != in_features.")]
    [InlineData("""{"peft_type": "BOFT", "target_modules": ["q_proj"], "boft_block_size": 0, "boft_block_num": 0}""", "you must specify either boft_block_size or boft_block_num.")]
    [InlineData("""{"peft_type": "BOFT", "target_modules": ["q_proj"], "boft_block_size": 5}""", "in_features (32) must be divisible by boft_block_size (5)!")]
    [InlineData("""{"peft_type": "BOFT", "target_modules": ["q_proj"], "boft_block_size": 8, "boft_n_butterfly_factor": 4}""", "Invalid combination of in_features (32), boft_n_butterfly_factor (4) and boft_block_size (8)!")]
    [InlineData("""{"peft_type": "BOFT", "target_modules": ["q_proj"], "boft_block_size": 0, "boft_block_num": 6}""", "in_features (32) must be divisible by boft_block_num (6)!")]
    [InlineData("""{"peft_type": "BOFT", "target_modules": ["q_proj"], "boft_n_butterfly_factor": 0}""", "'boft_n_butterfly_factor': must be a positive integer, got 0")]
    [InlineData("""{"peft_type": "BOFT", "target_modules": ["q_proj"], "bias": "lora_only"}""", "'bias': must be 'none', 'all' or 'boft_only'")]
    [InlineData("""{"peft_type": "OFT", "target_modules": ["q_proj"], "r": 0}""", "'r': must be a positive integer (the number of blocks), got 0")]
    [InlineData("""{"peft_type": "LOHA", "target_modules": ["q_proj"], "rank_pattern": {"q_proj": 0}}""", "'rank_pattern.q_proj': must be a positive integer")]
    [InlineData("""{"peft_type": "LOKR", "target_modules": ["q_proj"], "module_dropout": 1.5}""", "'module_dropout': must be in [0, 1]")]
    [InlineData("""{"peft_type": "LOHA"}""", "'target_modules' is missing")]
    [InlineData("""{"peft_type": "LOHA", "target_modules": ["embed_tokens"]}""", "'model.embed_tokens' matches target_modules")]
    public void What_peft_refuses_is_refused_with_the_field_and_reason(string json, string expected)
    {
        using PluginCatalog catalog = PeftCase.Catalog();
        using var model = new PeftCase("loha_llama").LoadBase();
        using var peft = new PeftModel(model, catalog);
        var e = Assert.Throws<TunerConfigException>(() => peft.AddAdapter("default", JsonNode.Parse(json)!.AsObject()));
        Assert.Contains(expected, e.Message);
        Assert.Empty(peft.Adapters);
    }

    // docs/methods/lokr.md, from PEFT's factorization(): out -> (out_l, out_k), in -> (in_m, in_n); w1 [out_l, in_m], w2 [out_k, in_n];
    // w2 is decomposed (lokr_w2_a [out_k, r], lokr_w2_b [r, in_n]) when r < max(out_k, in_n) / 2.
    [Theory]
    [InlineData(48, 32, -1, "lokr_w1 [4, 6]; lokr_w2 [8, 8]")]
    [InlineData(12, 16, -1, "lokr_w1 [4, 3]; lokr_w2 [4, 4]")]
    [InlineData(7, 256, -1, "lokr_w1 [16, 1]; lokr_w2 [16, 7]")]
    [InlineData(48, 128, 4, "lokr_w1 [4, 4]; lokr_w2_a [32, 8]; lokr_w2_b [8, 12]")]
    [InlineData(48, 128, 5, "lokr_w1 [4, 4]; lokr_w2_a [32, 8]; lokr_w2_b [8, 12]")]
    public void Lokr_factor_shapes_follow_peft_s_factorization(int inFeatures, int outFeatures, int factor, string expected)
    {
        using PluginCatalog catalog = PeftCase.Catalog();
        using var peft = new PeftModel(new OneLinear(inFeatures, outFeatures), catalog);
        peft.AddAdapter("default", new JsonObject { ["peft_type"] = "LOKR", ["target_modules"] = new JsonArray("linear"), ["decompose_factor"] = factor });
        using var state = peft.ExportAdapter("default");
        Assert.Equal(expected, string.Join("; ", state.Tensors.OrderBy(t => t.Key, StringComparer.Ordinal).Select(t => $"{t.Key["linear.".Length..]} [{string.Join(", ", t.Value.shape)}]")));
    }
}
