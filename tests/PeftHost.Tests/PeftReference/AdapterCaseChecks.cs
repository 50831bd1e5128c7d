using PeftHost.Abstractions.Layers;
using PeftHost.Engine.Peft;
using PeftHost.Engine.Plugins;
using PeftHost.Models;
using Xunit;
using static TorchSharp.torch;

namespace PeftHost.Tests.PeftReference;

/// <summary>
/// The checks every reference case of a layer method goes through: the base logits, the adapter loaded and
/// deleted (the base, bit for bit), the adapter loaded from the case's folder against the reference logits unmerged, disabled (the base, bit for bit), the saved file
/// against the reference's keys, shapes and config, then merged (and unmerged back) or refused, and
/// merge_and_unload's plain model.
/// </summary>
internal static class AdapterCaseChecks
{
    /// <summary>The forward of the case's model: logits of a causal LM, or of a sequence classifier.</summary>
    public static Tensor Logits(nn.Module model, ModelInputs inputs)
    {
        using (no_grad())
            return model is ISequenceClassifier classifier
                ? classifier.Forward(inputs.InputIds, inputs.AttentionMask, inputs.TokenTypeIds)
                : ((ICausalLM)model).Forward(inputs.InputIds, inputs.AttentionMask);
    }

    /// <summary>The same forward through the PEFT model (its read lock and fault handling).</summary>
    public static Tensor Logits(PeftModel peft, nn.Module model, ModelInputs inputs) => peft.Run(() => Logits(model, inputs));

    /// <param name="caseName">The case folder.</param>
    /// <param name="mergedFile">The logits the merged model must give (null: the method cannot merge, and says so).</param>
    public static void AssertMatchesReference(string caseName, string? mergedFile)
    {
        var c = new PeftCase(caseName);
        using PluginCatalog catalog = PeftCase.Catalog();
        using ModelInputs inputs = c.Inputs();
        using nn.Module model = c.LoadBase();
        using Tensor baseLogits = Logits(model, inputs);
        c.AssertLogits(baseLogits, "logits_base");
        using (PeftModel peft = PeftModel.FromPretrained(model, c.AdapterDir(), catalog))
        {
            peft.DeleteAdapter("default");
            Assert.DoesNotContain(model.modules(), m => m is TunerLayer);
            using Tensor deleted = Logits(model, inputs);
            Assert.True(deleted.Equals(baseLogits), $"{caseName}: deleting the adapter must give the base back exactly");
        }
        using (PeftModel peft = PeftModel.FromPretrained(model, c.AdapterDir(), catalog))
        {
            using (Tensor logits = Logits(peft, model, inputs)) c.AssertLogits(logits, "logits_adapter");
            using (peft.DisableAdapter())
            using (Tensor disabled = Logits(peft, model, inputs))
                Assert.True(disabled.Equals(baseLogits), $"{caseName}: disabled adapters must give the base logits exactly");
            c.AssertSavesLikePeft(peft);
            if (mergedFile is null)
            {
                Assert.Throws<NotSupportedException>(() => peft.Merge());
                Assert.Empty(peft.MergedAdapters);
                using (Tensor logits = Logits(peft, model, inputs)) c.AssertLogits(logits, "logits_adapter");
                peft.Unload();
                using Tensor unloaded = Logits(model, inputs);
                Assert.True(unloaded.Equals(baseLogits), $"{caseName}: unload must give the base back exactly");
                return;
            }
            peft.Merge(safeMerge: true);
            using (Tensor merged = Logits(peft, model, inputs)) c.AssertLogits(merged, mergedFile);
            peft.Unmerge();
            using (Tensor logits = Logits(peft, model, inputs)) c.AssertLogits(logits, "logits_adapter");
            peft.MergeAndUnload();
        }
        using Tensor plain = Logits(model, inputs);
        c.AssertLogits(plain, mergedFile);
    }
}
