using PeftHost.Engine.Peft;
using PeftHost.Engine.Plugins;
using PeftHost.Models;
using Xunit;
using static TorchSharp.torch;

namespace PeftHost.Tests.PeftReference;

/// <summary>
/// IA3 (output scaling on k/v, input scaling on the feed-forward down_proj) and AdaLoRA (scaling
/// lora_alpha / (ranknum + 1e-5); lora_A, lora_B, lora_E saved without ranknum), written by PEFT 0.13.2.
/// </summary>
public class IA3AndAdaLoraReferenceTests
{
    [Theory]
    [InlineData("ia3_llama")]
    [InlineData("adalora_llama")]
    public void Adapter_matches_peft_unmerged_merged_and_saved(string caseName)
    {
        var c = new PeftCase(caseName);
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

    [Theory]
    [InlineData("ia3_llama")]
    [InlineData("adalora_llama")]
    public void Merge_then_unmerge_restores_the_base_weights(string caseName)
    {
        var c = new PeftCase(caseName);
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
