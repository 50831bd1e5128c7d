using PeftHost.Engine.Peft;
using PeftHost.Engine.Plugins;
using PeftHost.Models;
using PeftHost.Tests.Support;
using Xunit;
using static TorchSharp.torch;

namespace PeftHost.Tests.PeftReference;

/// <summary>
/// LoHa, LoKr, OFT (PEFT 0.13.2's design) and BOFT adapters written by the real PEFT 0.13.2
/// (tests/fixtures/peft, specified in docs/methods), loaded through the plugin catalog: the adapter's
/// logits unmerged and merged, a save that matches PEFT's file, PEFT's merge / unmerge round trip,
/// disabled and deleted adapters giving the base exactly.
/// </summary>
public class LycorisAndOftReferenceTests
{
    public static TheoryData<string> Cases =>
    [
        "loha_llama", "loha_llama_patterns",
        "lokr_llama", "lokr_llama_decompose",
        "oft_llama", "oft_llama_block_share", "oft_llama_coft", "oft_llama_bias_odd_r",
        "boft_llama", "boft_llama_block_num", "boft_llama_butterfly", "boft_llama_butterfly_cpu_fallback",
    ];

    [Theory]
    [MemberData(nameof(Cases))]
    public void Adapter_matches_peft_unmerged_merged_and_saved(string caseName)
    {
        var c = new PeftCase(caseName);
        using PluginCatalog catalog = PeftCase.Catalog();
        using ModelInputs inputs = c.Inputs();
        using nn.Module model = c.LoadBase();
        using (no_grad())
        using (Tensor baseLogits = ((ICausalLM)model).Forward(inputs.InputIds))
            c.AssertLogits(baseLogits, "logits_base");
        using (PeftModel peft = PeftModel.FromPretrained(model, c.AdapterDir(), catalog))
        {
            using (Tensor logits = PeftCase.CausalLogits(peft, inputs)) c.AssertLogits(logits, "logits_adapter");
            c.AssertSavesLikePeft(peft);
            peft.MergeAndUnload(safeMerge: true);
        }
        using (no_grad())
        using (Tensor merged = ((ICausalLM)model).Forward(inputs.InputIds))
            c.AssertLogits(merged, "logits_merged");
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Disable_merge_unmerge_and_delete_behave_as_peft(string caseName)
    {
        var c = new PeftCase(caseName);
        using PluginCatalog catalog = PeftCase.Catalog();
        using ModelInputs inputs = c.Inputs();
        using nn.Module model = c.LoadBase();
        var names = model.named_parameters().Select(p => p.name).ToList();
        using Tensor baseLogits = BaseForward(model, inputs);
        using PeftModel peft = PeftModel.FromPretrained(model, c.AdapterDir(), catalog);

        using (peft.DisableAdapter())
        using (Tensor logits = PeftCase.CausalLogits(peft, inputs))
            Assert.Equal(0.0, Tensors.MaxAbsDiff(logits, baseLogits));

        peft.Merge(safeMerge: true);
        Assert.Equal(["default"], peft.MergedAdapters);
        using (Tensor logits = PeftCase.CausalLogits(peft, inputs)) c.AssertLogits(logits, "logits_merged");
        peft.Unmerge();
        Assert.Empty(peft.MergedAdapters);
        using (Tensor logits = PeftCase.CausalLogits(peft, inputs)) c.AssertLogits(logits, "logits_adapter");

        // Unmerging subtracts (or inverts) in float32, as PEFT: the base weights come back to rounding.
        peft.DeleteAdapter("default");
        Assert.Empty(peft.Adapters);
        Assert.Equal(names, model.named_parameters().Select(p => p.name).ToList());
        using (Tensor logits = BaseForward(model, inputs)) Assert.True(Tensors.MaxAbsDiff(logits, baseLogits) < 1e-5);
    }

    [Theory]
    [InlineData("loha_llama")]
    [InlineData("oft_llama_bias_odd_r")]
    [InlineData("boft_llama_butterfly")]
    [InlineData("lokr_llama_decompose")]
    public void A_saved_adapter_loads_back_with_the_same_numbers(string caseName)
    {
        var c = new PeftCase(caseName);
        using PluginCatalog catalog = PeftCase.Catalog();
        using ModelInputs inputs = c.Inputs();
        using var saved = new ScratchFolder();
        using (nn.Module model = c.LoadBase())
        using (PeftModel peft = PeftModel.FromPretrained(model, c.AdapterDir(), catalog))
            peft.SavePretrained(saved.Path);
        using nn.Module again = c.LoadBase();
        using PeftModel loaded = PeftModel.FromPretrained(again, saved.Path, catalog);
        using Tensor logits = PeftCase.CausalLogits(loaded, inputs);
        c.AssertLogits(logits, "logits_adapter");
    }

    private static Tensor BaseForward(nn.Module model, ModelInputs inputs)
    {
        using (no_grad()) return ((ICausalLM)model).Forward(inputs.InputIds);
    }
}
