using System.Text.Json.Nodes;
using PeftHost.Abstractions.Config;
using PeftHost.Abstractions.Layers;
using PeftHost.Engine.Peft;
using PeftHost.Engine.Plugins;
using PeftHost.Models;
using Xunit;
using static TorchSharp.torch;

namespace PeftHost.Tests.PeftReference;

/// <summary>
/// Bottleneck adapters (PeftHost's BOTTLENECK format, docs/methods/bottleneck.md) against the formula cases made
/// by plain torch forward hooks (tools/peft-reference/make_formula_cases.py): serial and parallel, adapter_size
/// and reduction_factor, the four activations, scaling, GPT-2 Conv1D, two adapters on one module, training.
/// </summary>
public class BottleneckFormulaTests
{
    [Theory]
    [InlineData("bottleneck_llama_serial")]
    [InlineData("bottleneck_llama_parallel")]
    [InlineData("bottleneck_gpt2_serial")]
    [InlineData("bottleneck_bert_parallel")]
    public void Adapter_matches_the_formula_disabled_is_the_base_and_merge_is_refused(string caseName) =>
        AdapterCaseChecks.AssertMatchesReference(caseName, mergedFile: null);

    [Fact]
    public void Serial_and_parallel_adapters_on_one_module_add_their_terms()
    {
        var c = new PeftCase("bottleneck_llama_two_adapters");
        using PluginCatalog catalog = PeftCase.Catalog();
        using ModelInputs inputs = c.Inputs();
        using nn.Module model = c.LoadBase();
        using PeftModel peft = PeftModel.FromPretrained(model, c.AdapterDir(), catalog);
        peft.LoadAdapter(c.AdapterDir("other"), "other");
        using (Tensor logits = PeftCase.CausalLogits(peft, inputs)) c.AssertLogits(logits, "logits_default");
        peft.SetActiveAdapters("other");
        using (Tensor logits = PeftCase.CausalLogits(peft, inputs)) c.AssertLogits(logits, "logits_other");
        peft.SetActiveAdapters("other", "default");
        using (Tensor logits = PeftCase.CausalLogits(peft, inputs)) c.AssertLogits(logits, "logits_both");
        c.AssertSavesLikePeft(peft, "other");
    }

    [Fact]
    public void Merge_is_refused_with_the_reason_and_nothing_changes()
    {
        var c = new PeftCase("bottleneck_llama_serial");
        using PluginCatalog catalog = PeftCase.Catalog();
        using ModelInputs inputs = c.Inputs();
        using nn.Module model = c.LoadBase();
        using PeftModel peft = PeftModel.FromPretrained(model, c.AdapterDir(), catalog);
        var e = Assert.Throws<NotSupportedException>(() => peft.MergeAndUnload());
        Assert.Contains("BOTTLENECK adapters (default) cannot be merged into the base weights", e.Message);
        Assert.Contains("nonlinear function", e.Message);
        Assert.Equal(["default"], peft.Adapters);
        using Tensor logits = PeftCase.CausalLogits(peft, inputs);
        c.AssertLogits(logits, "logits_adapter");
    }

    [Fact]
    public void A_new_adapter_starts_as_the_identity_and_has_the_documented_shapes()
    {
        var c = new PeftCase("bottleneck_llama_parallel");
        using PluginCatalog catalog = PeftCase.Catalog();
        using ModelInputs inputs = c.Inputs();
        using nn.Module model = c.LoadBase();
        using Tensor baseLogits = AdapterCaseChecks.Logits(model, inputs);
        using var peft = new PeftModel(model, catalog);
        peft.AddAdapter("default", new JsonObject
        {
            ["peft_type"] = "BOTTLENECK", ["target_modules"] = new JsonArray("o_proj", "down_proj"),
            ["reduction_factor"] = 4, ["adapter_act"] = "silu", ["parallel"] = true, ["scaling"] = 4.0,
        });
        using (Tensor logits = PeftCase.CausalLogits(peft, inputs)) Assert.True(logits.Equals(baseLogits));
        using var state = peft.ExportAdapter("default");
        Assert.Equal(new long[] { 12, 48 }, state.Tensors["model.layers.0.mlp.down_proj.bottleneck_down.weight"].shape);
        Assert.Equal(new long[] { 32, 12 }, state.Tensors["model.layers.0.mlp.down_proj.bottleneck_up.weight"].shape);
        Assert.Equal(new long[] { 8, 32 }, state.Tensors["model.layers.1.self_attn.o_proj.bottleneck_down.weight"].shape);
        Assert.Equal(16, state.Tensors.Count);
        Assert.Equal(16, peft.NamedParameters().Count(p => p.Parameter.requires_grad));
    }

    [Theory]
    [InlineData("""{"target_modules": ["o_proj"], "adapter_size": 4, "reduction_factor": 2}""", "exactly one must be given, got both")]
    [InlineData("""{"target_modules": ["o_proj"]}""", "exactly one must be given, got neither")]
    [InlineData("""{"target_modules": ["o_proj"], "adapter_size": 0}""", "'adapter_size': expected a positive integer")]
    [InlineData("""{"target_modules": ["o_proj"], "adapter_size": 4, "adapter_act": "swish"}""", "'adapter_act': expected one of \"relu\", \"gelu\", \"silu\", \"tanh\", got \"swish\"")]
    [InlineData("""{"target_modules": ["o_proj"], "adapter_size": 4, "adapter_dropout": 1.0}""", "'adapter_dropout': expected a probability in [0, 1)")]
    [InlineData("""{"target_modules": ["mlp"], "adapter_size": 4}""", "matches 'model.layers.0.mlp', a LlamaMlp")]
    [InlineData("""{"target_modules": ["nothing_here"], "adapter_size": 4}""", "target_modules [nothing_here] matched no module")]
    [InlineData("""{"adapter_size": 4}""", "'target_modules' is missing")]
    public void Bad_configs_are_refused_naming_the_field(string fields, string message)
    {
        var c = new PeftCase("bottleneck_llama_serial");
        using PluginCatalog catalog = PeftCase.Catalog();
        using nn.Module model = c.LoadBase();
        using var peft = new PeftModel(model, catalog);
        JsonObject config = JsonNode.Parse(fields)!.AsObject();
        config["peft_type"] = "BOTTLENECK";
        var e = Assert.Throws<TunerConfigException>(() => peft.AddAdapter("default", config));
        Assert.Contains(message, e.Message);
        Assert.DoesNotContain(model.modules(), m => m is TunerLayer);
    }

    [Fact]
    public void Training_steps_match_the_formula() => TrainingReplay.AssertTrainsLikeReference("train_bottleneck_llama");
}
