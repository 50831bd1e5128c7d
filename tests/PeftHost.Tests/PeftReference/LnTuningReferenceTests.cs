using System.Text.Json.Nodes;
using PeftHost.Abstractions.Layers;
using PeftHost.Abstractions.State;
using PeftHost.Engine.Peft;
using PeftHost.Engine.Plugins;
using PeftHost.Models;
using PeftHost.Tests.Support;
using Xunit;
using static TorchSharp.torch;

namespace PeftHost.Tests.PeftReference;

/// <summary>
/// LN tuning adapters written by PEFT 0.13.2: trained copies of Llama's RMSNorms (default targets) and BERT's
/// LayerNorms (weight and bias, with the classifier in modules_to_save), merged by putting the copy in place.
/// </summary>
public class LnTuningReferenceTests
{
    [Theory]
    [InlineData("ln_tuning_llama")]
    [InlineData("ln_tuning_bert")]
    public void Adapter_matches_peft_unmerged_disabled_saved_and_merged(string caseName) =>
        AdapterCaseChecks.AssertMatchesReference(caseName, "logits_merged");

    [Fact]
    public void Default_targets_are_peft_table_for_llama()
    {
        var c = new PeftCase("ln_tuning_llama");
        using PluginCatalog catalog = PeftCase.Catalog();
        using nn.Module model = c.LoadBase();
        using var peft = new PeftModel(model, catalog);
        peft.AddAdapter("default", c.Meta["peft_config_passed"]!.AsObject());
        using AdapterState mine = peft.ExportAdapter("default");
        using AdapterState saved = AdapterFolder.Read(c.AdapterDir(), "default");
        Assert.Equal(saved.Config["target_modules"]!.AsArray().Select(n => n!.GetValue<string>()).Order(StringComparer.Ordinal),
            mine.Config["target_modules"]!.AsArray().Select(n => n!.GetValue<string>()).Order(StringComparer.Ordinal));
        Assert.Equal(saved.Tensors.Keys.Order(StringComparer.Ordinal), mine.Tensors.Keys.Order(StringComparer.Ordinal));
        // The copies start equal to the norms they copy: a no-op adapter.
        var norms = model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach ((string key, Tensor value) in mine.Tensors)
            Assert.True(value.Equals(norms[key.Replace(".ln_tuning_layers.", ".base_layer.", StringComparison.Ordinal)]), key);
    }

    [Fact]
    public void Bert_without_target_modules_is_refused_as_peft_refuses_it()
    {
        var c = new PeftCase("ln_tuning_bert");
        using PluginCatalog catalog = PeftCase.Catalog();
        using nn.Module model = c.LoadBase();
        using var peft = new PeftModel(model, catalog);
        var e = Assert.Throws<PeftHost.Abstractions.Config.TunerConfigException>(() => peft.AddAdapter("default", new JsonObject { ["peft_type"] = "LN_TUNING" }));
        Assert.Contains("Please specify `target_modules`", e.Message);
        Assert.Contains("bert", e.Message);
    }

    [Fact]
    public void Two_active_adapters_on_one_norm_are_refused_at_the_forward_and_one_merges_at_a_time()
    {
        var c = new PeftCase("ln_tuning_llama");
        using PluginCatalog catalog = PeftCase.Catalog();
        using ModelInputs inputs = c.Inputs();
        using nn.Module model = c.LoadBase();
        using PeftModel peft = PeftModel.FromPretrained(model, c.AdapterDir(), catalog);
        peft.LoadAdapter(c.AdapterDir(), "second");
        peft.SetActiveAdapters("default", "second");
        var e = Assert.Throws<NotSupportedException>(() => PeftCase.CausalLogits(peft, inputs));
        Assert.Contains("LN tuning does not allow inference with more than one adapter at a time", e.Message);

        var m = Assert.Throws<NotSupportedException>(() => peft.Merge(["default", "second"]));
        Assert.Contains("LN tuning does not allow merging more than one adapter at a time", m.Message);
        Assert.Empty(peft.MergedAdapters);

        peft.SetActiveAdapters("second");
        using (Tensor logits = PeftCase.CausalLogits(peft, inputs)) c.AssertLogits(logits, "logits_adapter");
        using (no_grad())
        using (Tensor batch = peft.CausalLMForward(inputs.InputIds, null, ["default", "__base__"]))
        using (Tensor adapter = c.Logits("logits_adapter"))
        using (Tensor baseLogits = c.Logits("logits_base"))
        {
            Assert.True(Tensors.MaxAbsDiff(batch[0], adapter[0]) < PeftCase.Tolerance);
            Assert.True(Tensors.MaxAbsDiff(batch[1], baseLogits[1]) < PeftCase.Tolerance);
        }
    }

    [Fact]
    public void Merge_unmerge_and_delete_restore_the_norms_bit_for_bit()
    {
        var c = new PeftCase("ln_tuning_bert");
        using PluginCatalog catalog = PeftCase.Catalog();
        using nn.Module model = c.LoadBase();
        var original = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());
        using PeftModel peft = PeftModel.FromPretrained(model, c.AdapterDir(), catalog);
        peft.Merge();
        Assert.Equal(["default"], peft.MergedAdapters);
        peft.Unmerge();
        peft.DeleteAdapter("default");
        Assert.DoesNotContain(model.modules(), m => m is TunerLayer);
        foreach (var (name, p) in model.named_parameters()) Assert.True(p.Equals(original[name]), name);
        foreach (Tensor t in original.Values) t.Dispose();
    }

    [Fact]
    public void Training_steps_match_peft() => TrainingReplay.AssertTrainsLikeReference("train_ln_tuning_llama");
}
