using PeftHost.Engine.Peft;
using PeftHost.Engine.Plugins;
using PeftHost.Models;
using Xunit;
using static TorchSharp.torch;

namespace PeftHost.Tests.PeftReference;

/// <summary>IA3 written by PEFT 0.13.2 (output scaling on k/v, input scaling on the feed-forward down_proj).</summary>
public class IA3ReferenceTests
{
    [Fact]
    public void IA3_adapter_matches_peft_unmerged_merged_and_saved()
    {
        var c = new PeftCase("ia3_llama");
        using PluginCatalog catalog = PeftCase.Catalog();
        using ModelInputs inputs = c.Inputs();
        using nn.Module model = c.LoadBase();
        using (PeftModel peft = PeftModel.FromPretrained(model, c.AdapterDir(), catalog))
        {
            using (Tensor logits = PeftCase.CausalLogits(peft, inputs)) c.AssertLogits(logits, "logits_adapter");
            c.AssertSavesLikePeft(peft);
            peft.MergeAndUnload();
        }
        using (no_grad())
        using (Tensor merged = ((ICausalLM)model).Forward(inputs.InputIds))
            c.AssertLogits(merged, "logits_merged");
    }

    [Fact]
    public void Merge_then_unmerge_restores_the_base_weights()
    {
        var c = new PeftCase("ia3_llama");
        using PluginCatalog catalog = PeftCase.Catalog();
        using ModelInputs inputs = c.Inputs();
        using nn.Module model = c.LoadBase();
        using PeftModel peft = PeftModel.FromPretrained(model, c.AdapterDir(), catalog);
        peft.Merge(safeMerge: true);
        using (Tensor logits = PeftCase.CausalLogits(peft, inputs)) c.AssertLogits(logits, "logits_merged");
        peft.Unmerge();
        using (Tensor logits = PeftCase.CausalLogits(peft, inputs)) c.AssertLogits(logits, "logits_adapter");
        using (peft.DisableAdapter())
        using (Tensor logits = PeftCase.CausalLogits(peft, inputs)) c.AssertLogits(logits, "logits_base");
    }
}
