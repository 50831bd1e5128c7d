using PeftHost.Engine.Peft;
using PeftHost.Engine.Plugins;
using PeftHost.Models;
using Xunit;
using static TorchSharp.torch;

namespace PeftHost.Tests.PeftReference;

/// <summary>
/// LoRA adapters written by the real PEFT 0.13.2, loaded through the plugin catalog: the adapter's
/// logits, the merged model's logits (merge_and_unload), and a save that matches PEFT's file.
/// </summary>
public class LoraReferenceTests
{
    [Theory]
    [InlineData("lora_rslora_llama")]
    [InlineData("lora_dora_llama")]
    [InlineData("lora_gpt2_conv1d")]
    [InlineData("lora_embedding_llama")]
    [InlineData("lora_all_linear_bias")]
    [InlineData("lora_layers_to_transform")]
    public void Causal_lm_adapter_matches_peft_unmerged_merged_and_saved(string name)
    {
        var c = new PeftCase(name);
        using PluginCatalog catalog = PeftCase.Catalog();
        using ModelInputs inputs = c.Inputs();
        nn.Module model = c.LoadBase();
        using (model)
        {
            using (no_grad())
            using (Tensor baseLogits = ((ICausalLM)model).Forward(inputs.InputIds))
                c.AssertLogits(baseLogits, "logits_base");
            using (PeftModel peft = PeftModel.FromPretrained(model, c.AdapterDir(), catalog))
            {
                using (Tensor logits = PeftCase.CausalLogits(peft, inputs)) c.AssertLogits(logits, "logits_adapter");
                c.AssertSavesLikePeft(peft);
                peft.MergeAndUnload();
            }
            using (no_grad())
            using (Tensor merged = ((ICausalLM)model).Forward(inputs.InputIds, inputs.AttentionMask))
                c.AssertLogits(merged, "logits_merged");
        }
    }

    [Fact]
    public void Bert_sequence_classification_with_modules_to_save_matches_peft()
    {
        var c = new PeftCase("lora_modules_to_save_bert");
        using PluginCatalog catalog = PeftCase.Catalog();
        using ModelInputs inputs = c.Inputs();
        nn.Module model = c.LoadBase();
        var classifier = (ISequenceClassifier)model;
        Tensor Classify()
        {
            using (no_grad()) return classifier.Forward(inputs.InputIds, inputs.AttentionMask, inputs.TokenTypeIds);
        }
        using (model)
        {
            using (Tensor baseLogits = Classify()) c.AssertLogits(baseLogits, "logits_base");
            using (PeftModel peft = PeftModel.FromPretrained(model, c.AdapterDir(), catalog))
            {
                using (Tensor logits = peft.Run(Classify)) c.AssertLogits(logits, "logits_adapter");
                c.AssertSavesLikePeft(peft);
                peft.MergeAndUnload();
            }
            using (Tensor merged = Classify()) c.AssertLogits(merged, "logits_merged");
        }
    }
}
