using PeftHost.Engine.Peft;
using PeftHost.Engine.Plugins;
using PeftHost.Models;
using Xunit;
using static TorchSharp.torch;

namespace PeftHost.Tests.PeftReference;

/// <summary>Several LoRA adapters on one model, against PEFT 0.13.2: switching, add_weighted_adapter, mixed batches.</summary>
public class LoraMultiAdapterReferenceTests
{
    [Fact]
    public void Two_adapters_and_their_weighted_combinations_match_peft()
    {
        var c = new PeftCase("lora_multi_adapter");
        using PluginCatalog catalog = PeftCase.Catalog();
        using ModelInputs inputs = c.Inputs();
        using nn.Module model = c.LoadBase();
        using PeftModel peft = PeftModel.FromPretrained(model, c.AdapterDir(), catalog);
        peft.LoadAdapter(c.AdapterDir("other"), "other");

        using (Tensor logits = PeftCase.CausalLogits(peft, inputs)) c.AssertLogits(logits, "logits_default");
        peft.SetActiveAdapters("other");
        using (Tensor logits = PeftCase.CausalLogits(peft, inputs)) c.AssertLogits(logits, "logits_other");

        peft.AddWeightedAdapter(["default", "other"], [0.7, 0.3], "combo", combinationType: "linear");
        peft.SetActiveAdapters("combo");
        using (Tensor logits = PeftCase.CausalLogits(peft, inputs)) c.AssertLogits(logits, "logits_combo");

        peft.AddWeightedAdapter(["default", "other"], [0.7, 0.3], "combo_svd", combinationType: "svd");
        peft.SetActiveAdapters("combo_svd");
        using (Tensor logits = PeftCase.CausalLogits(peft, inputs)) c.AssertLogits(logits, "logits_combo_svd");

        using (peft.DisableAdapter())
        using (Tensor logits = PeftCase.CausalLogits(peft, inputs)) c.AssertLogits(logits, "logits_base");

        c.AssertSavesLikePeft(peft, "default");
        c.AssertSavesLikePeft(peft, "other");
    }

    [Fact]
    public void Mixed_batch_routes_each_row_to_its_adapter_as_peft()
    {
        var c = new PeftCase("lora_mixed_batch");
        using PluginCatalog catalog = PeftCase.Catalog();
        using ModelInputs inputs = c.Inputs();
        using nn.Module model = c.LoadBase();
        // Each file also holds the other adapter's tensors under foreign keys (PEFT's substring filter); they must be ignored.
        using PeftModel peft = PeftModel.FromPretrained(model, c.AdapterDir("a"), catalog, adapterName: "a");
        peft.LoadAdapter(c.AdapterDir("b"), "b");

        var causal = (ICausalLM)model;
        using (Tensor mixed = peft.Run(() => { using (no_grad()) return causal.Forward(inputs.InputIds); }, ["a", "__base__", "b"]))
            c.AssertLogits(mixed, "logits_mixed");
        using (Tensor logits = PeftCase.CausalLogits(peft, inputs)) c.AssertLogits(logits, "logits_a");
        peft.SetActiveAdapters("b");
        using (Tensor logits = PeftCase.CausalLogits(peft, inputs)) c.AssertLogits(logits, "logits_b");
        using (peft.DisableAdapter())
        using (Tensor logits = PeftCase.CausalLogits(peft, inputs)) c.AssertLogits(logits, "logits_base");

        c.AssertSavesLikePeft(peft, "a");
        c.AssertSavesLikePeft(peft, "b");
    }
}
