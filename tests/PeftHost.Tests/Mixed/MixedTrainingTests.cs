using System.Text.Json.Nodes;
using PeftHost.Abstractions.State;
using PeftHost.Engine.Peft;
using PeftHost.Engine.Plugins;
using PeftHost.Models;
using PeftHost.Tests.PeftReference;
using PeftHost.Tests.Support;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace PeftHost.Tests.Mixed;

/// <summary>
/// A LoRA adapter on attention and a LoHa adapter on the FFN trained together with one AdamW, against PEFT 0.13.2's
/// <c>PeftMixedModel</c> (train_mixed_lora_loha): each step's loss, the trained model's logits (both active and each
/// alone), each adapter saved to its own folder with PEFT's final tensors, and each folder reloaded alone.
/// </summary>
public class MixedTrainingTests
{
    [Fact]
    public void Lora_and_loha_trained_together_match_peft_step_by_step_and_save_apart()
    {
        var c = new PeftCase("train_mixed_lora_loha");
        JsonObject training = c.Meta["training"]!.AsObject();
        JsonObject recorded = JsonNode.Parse(File.ReadAllText(Path.Combine(c.Folder, "losses.json")))!.AsObject();
        double[] expected = recorded["losses"]!.AsArray().Select(l => l!.GetValue<double>()).ToArray();
        Assert.Equal(training["steps"]!.GetValue<int>(), expected.Length);
        using PluginCatalog catalog = PeftCase.Catalog();
        using ModelInputs inputs = c.Inputs();
        using ModelInputs rows = ModelInputs.Read(Path.Combine(c.Folder, "data.json"));
        using nn.Module model = c.LoadBase();
        using PeftModel peft = PeftModel.FromPretrained(model, Path.Combine(c.Folder, "initial_adapter_one"), catalog, adapterName: "one", isTrainable: true);
        peft.LoadAdapter(Path.Combine(c.Folder, "initial_adapter_two"), "two", isTrainable: true);
        peft.SetActiveAdapters("one", "two");

        // PEFT's set_adapter(["one", "two"]): exactly both adapters' tensors train, by PEFT's names.
        var trainable = peft.NamedParameters().Where(p => p.Parameter.requires_grad).ToList();
        Assert.Equal(c.Meta["trained_parameters"]!.AsArray().Select(n => n!.GetValue<string>()).Order(StringComparer.Ordinal),
            trainable.Select(p => p.Name).Order(StringComparer.Ordinal));

        model.train();
        using (var optimizer = optim.AdamW(trainable.Select(p => p.Parameter), training["lr"]!.GetValue<double>(), 0.9, 0.999, 1e-8, 0.01))
        {
            for (int step = 0; step < expected.Length; step++)
            {
                optimizer.zero_grad();
                using Tensor loss = Loss(peft, rows.InputIds);
                loss.backward();
                double value = loss.item<float>();
                TestContext.Current.TestOutputHelper?.WriteLine($"step {step + 1}: loss {value:F6} (PEFT {expected[step]:F6})");
                Assert.True(Math.Abs(value - expected[step]) < PeftCase.Tolerance, $"step {step + 1}: loss {value}, PEFT {expected[step]}");
                optimizer.step();
            }
        }
        model.eval();
        using (no_grad())
        using (Tensor after = Loss(peft, rows.InputIds))
            Assert.True(Math.Abs(after.item<float>() - recorded["loss_after_training"]!.GetValue<double>()) < PeftCase.Tolerance, $"loss after training {after.item<float>()}");
        using (Tensor logits = PeftCase.CausalLogits(peft, inputs)) c.AssertLogits(logits, "logits_final");

        using var saved = new ScratchFolder();
        peft.SavePretrained(saved.Path);
        foreach (string name in new[] { "one", "two" })
        {
            using (AdapterState theirs = AdapterFolder.Read(Path.Combine(c.Folder, "final_adapter_" + name), name))
            using (AdapterState ours = AdapterFolder.Read(Path.Combine(saved.Path, name), name))
            {
                Assert.Equal(theirs.Tensors.Keys.Order(StringComparer.Ordinal), ours.Tensors.Keys.Order(StringComparer.Ordinal));
                foreach ((string key, Tensor t) in theirs.Tensors)
                {
                    double diff = Tensors.MaxAbsDiff(ours.Tensors[key], t);
                    Assert.True(diff < PeftCase.Tolerance, $"adapter '{name}': trained tensor '{key}' differs from PEFT's by {diff}");
                }
            }
            peft.SetActiveAdapters(name);
            using (Tensor logits = PeftCase.CausalLogits(peft, inputs)) c.AssertLogits(logits, "logits_final_" + name);

            using nn.Module fresh = c.LoadBase();
            using PeftModel alone = PeftModel.FromPretrained(fresh, Path.Combine(saved.Path, name), catalog);
            using Tensor aloneLogits = PeftCase.CausalLogits(alone, inputs);
            c.AssertLogits(aloneLogits, "logits_final_" + name);
        }
    }

    // transformers' causal-LM loss with labels = input_ids: mean cross-entropy of each position's logits against the next token.
    private static Tensor Loss(PeftModel peft, Tensor ids)
    {
        using var scope = NewDisposeScope();
        Tensor logits = peft.CausalLMForward(ids);
        long vocab = logits.shape[^1];
        Tensor shifted = logits[.., ..^1, ..].reshape(-1, vocab);
        Tensor labels = ids[.., 1..].reshape(-1);
        return scope.MoveToOuter(nn.functional.cross_entropy(shifted, labels));
    }
}
