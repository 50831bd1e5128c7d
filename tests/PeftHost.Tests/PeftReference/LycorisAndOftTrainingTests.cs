using System.Text.Json.Nodes;
using PeftHost.Engine.Peft;
using PeftHost.Engine.Plugins;
using PeftHost.Formats.Safetensors;
using PeftHost.Models;
using PeftHost.Models.Checkpoint;
using PeftHost.Tests.Support;
using TorchSharp;
using TorchSharp.Modules;
using Xunit;
using static TorchSharp.torch;

namespace PeftHost.Tests.PeftReference;

/// <summary>
/// A few AdamW steps equal to PEFT's (the train_*_llama cases, made by the real PEFT 0.13.2): the
/// perturbed initial adapter loaded trainable, the case's loop (lr, betas, eps and weight decay from
/// meta.json; the causal-LM loss of transformers: mean cross-entropy of each token's logits against the
/// next token) in a plain TorchSharp loop over the trainable parameters of PeftModel.NamedParameters();
/// each step's loss, the loss after training, the final adapter's tensors and logits against PEFT's.
/// </summary>
public class LycorisAndOftTrainingTests
{
    [Theory]
    [InlineData("train_loha_llama")]
    [InlineData("train_lokr_llama")]
    [InlineData("train_oft_llama")]
    [InlineData("train_boft_llama")]
    public void AdamW_steps_equal_peft_losses_and_final_adapter(string caseName)
    {
        var c = new PeftCase(caseName);
        JsonObject training = c.Meta["training"]!.AsObject();
        using PluginCatalog catalog = PeftCase.Catalog();
        using ModelInputs rows = ModelInputs.Read(Path.Combine(c.Folder, "data.json"));
        using ModelInputs inputs = c.Inputs();
        using nn.Module model = c.LoadBase();
        using PeftModel peft = PeftModel.FromPretrained(model, Path.Combine(c.Folder, "initial_adapter"), catalog, isTrainable: true);

        // PEFT's trainable parameters, by PEFT's names.
        var trainable = peft.NamedParameters().Where(p => p.Parameter.requires_grad).ToList();
        Assert.Equal(c.Meta["trained_parameters"]!.AsArray().Select(n => n!.GetValue<string>()).Order(StringComparer.Ordinal),
            trainable.Select(p => p.Name).Order(StringComparer.Ordinal));
        Assert.Equal(c.Meta["trainable_parameters"]!["trainable"]!.GetValue<long>(), peft.TrainableParameterCounts().Trainable);

        JsonArray betas = training["betas"]!.AsArray();
        using var optimizer = optim.AdamW(trainable.Select(p => p.Parameter), lr: training["lr"]!.GetValue<double>(),
            beta1: betas[0]!.GetValue<double>(), beta2: betas[1]!.GetValue<double>(), eps: training["eps"]!.GetValue<double>(),
            weight_decay: training["weight_decay"]!.GetValue<double>());
        double[] expected = training["losses"]!.AsArray().Select(n => n!.GetValue<double>()).ToArray();
        Assert.Equal(expected.Length, training["steps"]!.GetValue<int>());

        model.train();
        for (int step = 0; step < expected.Length; step++)
        {
            using var scope = NewDisposeScope();
            Tensor loss = CausalLMLoss(peft, rows.InputIds);
            loss.backward();
            double value = loss.item<float>();
            TestContext.Current.TestOutputHelper?.WriteLine($"{caseName} step {step + 1}: loss {value:F6} (PEFT {expected[step]:F6})");
            Assert.True(Math.Abs(value - expected[step]) < PeftCase.Tolerance, $"{caseName} step {step + 1}: loss {value}, PEFT {expected[step]}");
            optimizer.step();
            optimizer.zero_grad();
        }
        model.eval();
        using (no_grad())
        using (Tensor after = CausalLMLoss(peft, rows.InputIds))
            Assert.True(Math.Abs(after.item<float>() - training["loss_after_training"]!.GetValue<double>()) < PeftCase.Tolerance);
        using (Tensor logits = PeftCase.CausalLogits(peft, inputs)) c.AssertLogits(logits, "logits_final");

        // The trained adapter, saved, equals PEFT's final adapter tensor by tensor.
        using var saved = new ScratchFolder();
        peft.SavePretrained(saved.Path);
        using var ours = SafetensorsFile.Open(Path.Combine(saved.Path, AdapterFolder.WeightsFile));
        using var theirs = SafetensorsFile.Open(Path.Combine(c.Folder, "final_adapter", AdapterFolder.WeightsFile));
        Assert.Equal(theirs.Tensors.Select(t => t.Name).Order(StringComparer.Ordinal), ours.Tensors.Select(t => t.Name).Order(StringComparer.Ordinal));
        foreach (SafetensorsTensorInfo info in theirs.Tensors)
        {
            using Tensor a = TensorBridge.Read(ours, info.Name, ScalarType.Float32);
            using Tensor b = TensorBridge.Read(theirs, info.Name, ScalarType.Float32);
            double diff = Tensors.MaxAbsDiff(a, b);
            Assert.True(diff < PeftCase.Tolerance, $"{caseName}: {info.Name} differs from PEFT's final adapter by {diff}");
        }
    }

    // transformers' LlamaForCausalLM loss with labels = input_ids: the logits of positions 0..n-2 against tokens 1..n-1, mean cross-entropy.
    private static Tensor CausalLMLoss(PeftModel peft, Tensor ids)
    {
        using var scope = NewDisposeScope();
        Tensor logits = peft.CausalLMForward(ids);
        long vocab = logits.shape[^1];
        Tensor shifted = logits[.., ..^1, ..].reshape(-1, vocab);
        Tensor labels = ids[.., 1..].reshape(-1);
        return scope.MoveToOuter(nn.functional.cross_entropy(shifted.to(ScalarType.Float32), labels));
    }
}
