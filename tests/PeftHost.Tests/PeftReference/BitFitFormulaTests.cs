using System.Text.Json.Nodes;
using PeftHost.Abstractions.Config;
using PeftHost.Abstractions.Layers;
using PeftHost.Abstractions.State;
using PeftHost.Engine.Peft;
using PeftHost.Engine.Plugins;
using PeftHost.Models;
using Xunit;
using static TorchSharp.torch;

namespace PeftHost.Tests.PeftReference;

/// <summary>
/// BitFit (PeftHost's BITFIT format, docs/methods/bitfit.md) against the formula cases made by plain torch
/// (targeted biases replaced; tools/peft-reference/make_formula_cases.py): BERT and GPT-2 (Linear, Conv1D,
/// LayerNorm biases; not GPT-2's attn.bias mask), modules_to_save, layers_to_transform, exact removal, training.
/// </summary>
public class BitFitFormulaTests
{
    [Theory]
    [InlineData("bitfit_bert_all")]
    [InlineData("bitfit_bert_seq_cls_subset")]
    [InlineData("bitfit_gpt2")]
    [InlineData("bitfit_gpt2_all")]
    public void Adapter_matches_the_formula_unmerged_disabled_saved_and_merged(string caseName) =>
        AdapterCaseChecks.AssertMatchesReference(caseName, "logits_adapter");

    [Theory]
    [InlineData("bitfit_bert_all")]
    [InlineData("bitfit_bert_seq_cls_subset")]
    [InlineData("bitfit_gpt2")]
    [InlineData("bitfit_gpt2_all")]
    [InlineData("train_bitfit_llama_bias")]
    public void A_new_adapter_selects_the_documented_modules_and_starts_as_the_base(string caseName)
    {
        var c = new PeftCase(caseName);
        using PluginCatalog catalog = PeftCase.Catalog();
        using ModelInputs inputs = c.Inputs();
        using nn.Module model = c.LoadBase();
        using Tensor baseLogits = AdapterCaseChecks.Logits(model, inputs);
        using var peft = new PeftModel(model, catalog);
        JsonObject config = JsonNode.Parse(File.ReadAllText(Path.Combine(c.Folder, caseName.StartsWith("train_", StringComparison.Ordinal) ? "initial_adapter" : "adapter", AdapterFolder.ConfigFile)))!.AsObject();
        config["inference_mode"] = false;
        peft.AddAdapter("default", config);
        using AdapterState state = peft.ExportAdapter("default");
        string[] targets = c.Meta["targets"]!.AsArray().Select(t => t!.GetValue<string>()).ToArray();
        Assert.Equal(targets.Select(t => t + ".bias").Order(StringComparer.Ordinal),
            state.Tensors.Keys.Where(k => !k.StartsWith("classifier.", StringComparison.Ordinal) || targets.Contains("classifier")).Order(StringComparer.Ordinal));
        using (Tensor logits = AdapterCaseChecks.Logits(peft, model, inputs)) Assert.True(logits.Equals(baseLogits));
        Assert.Equal(targets.Length, peft.NamedParameters().Count(p => p.Parameter.requires_grad && p.Name.Contains(".bitfit_bias.", StringComparison.Ordinal)));
        Assert.DoesNotContain(peft.NamedParameters(), p => p.Parameter.requires_grad && !p.Name.Contains(".bitfit_bias.", StringComparison.Ordinal) && !p.Name.Contains(".modules_to_save.", StringComparison.Ordinal));
    }

    [Fact]
    public void Merge_unmerge_delete_and_unload_restore_the_base_biases_bit_for_bit()
    {
        var c = new PeftCase("bitfit_gpt2_all");
        using PluginCatalog catalog = PeftCase.Catalog();
        using ModelInputs inputs = c.Inputs();
        using nn.Module model = c.LoadBase();
        var original = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());
        using (PeftModel peft = PeftModel.FromPretrained(model, c.AdapterDir(), catalog))
        {
            peft.Merge();
            peft.Unmerge();
            peft.DeleteAdapter("default");
            AssertBiases(model, original);
            peft.LoadAdapter(c.AdapterDir(), "again");
            peft.Merge();
            peft.Unload();
            AssertBiases(model, original);
        }
        using (PeftModel peft = PeftModel.FromPretrained(model, c.AdapterDir(), catalog))
        {
            nn.Module merged = peft.MergeAndUnload();
            using AdapterState saved = AdapterFolder.Read(c.AdapterDir(), "default");
            var parameters = merged.named_parameters().ToDictionary(p => p.name, p => p.parameter);
            foreach ((string key, Tensor bias) in saved.Tensors) Assert.True(parameters[key].Equals(bias), key);
        }
        foreach (Tensor t in original.Values) t.Dispose();
    }

    [Fact]
    public void Two_active_adapters_holding_one_module_bias_are_refused()
    {
        var c = new PeftCase("bitfit_gpt2");
        using PluginCatalog catalog = PeftCase.Catalog();
        using ModelInputs inputs = c.Inputs();
        using nn.Module model = c.LoadBase();
        using PeftModel peft = PeftModel.FromPretrained(model, c.AdapterDir(), catalog);
        peft.LoadAdapter(c.AdapterDir(), "second");
        peft.SetActiveAdapters("default", "second");
        var e = Assert.Throws<NotSupportedException>(() => PeftCase.CausalLogits(peft, inputs));
        Assert.Contains("one module's bias can come from one BitFit adapter only", e.Message);
        peft.Merge(["default"]);
        var m = Assert.Throws<NotSupportedException>(() => peft.Merge(["second"]));
        Assert.Contains("unmerge it before merging 'second'", m.Message);
        Assert.Equal(["default"], peft.MergedAdapters);
    }

    [Theory]
    [InlineData("""["c_attn", "wte"]""", null, "'wte' matches no module with a bias", "transformer.wte")]
    [InlineData("""["c_attn"]""", 5, "'c_attn' matches no module with a bias", "within layers_to_transform")]
    [InlineData("\"nothing.*\"", null, "matched no module with a bias", "transformer.h.0.ln_1")]
    public void Targets_without_a_bias_are_refused_naming_them(string targets, int? layer, string message, string detail)
    {
        var c = new PeftCase("bitfit_gpt2");
        using PluginCatalog catalog = PeftCase.Catalog();
        using nn.Module model = c.LoadBase();
        using var peft = new PeftModel(model, catalog);
        var config = new JsonObject { ["peft_type"] = "BITFIT", ["target_modules"] = JsonNode.Parse(targets) };
        if (layer is int l) config["layers_to_transform"] = new JsonArray(l);
        var e = Assert.Throws<TunerConfigException>(() => peft.AddAdapter("default", config));
        Assert.Contains(message, e.Message);
        Assert.Contains(detail, e.Message);
        Assert.DoesNotContain(model.modules(), m => m is TunerLayer);
    }

    [Fact]
    public void Training_steps_match_the_formula() => TrainingReplay.AssertTrainsLikeReference("train_bitfit_llama_bias");

    private static void AssertBiases(nn.Module model, Dictionary<string, Tensor> original)
    {
        Assert.DoesNotContain(model.modules(), m => m is TunerLayer);
        foreach (var (name, p) in model.named_parameters()) Assert.True(p.Equals(original[name]), name);
    }
}
