using System.Text.Json.Nodes;
using PeftHost.Engine.Peft;
using PeftHost.Models;
using PeftHost.Training.Data;
using PeftHost.Training.Loss;
using PeftHost.Training.Optimization;
using Xunit;
using static TorchSharp.torch;

namespace PeftHost.Tests.Training;

/// <summary>The losses by their formulas, weight-decay groups as transformers makes them, and gradient checkpointing giving the same gradients.</summary>
public sealed class LossAndCheckpointingTests
{
    [Fact]
    public void Causal_loss_is_shifted_cross_entropy_over_counted_labels()
    {
        manual_seed(0);
        using Tensor logits = randn(2, 4, 6);
        using Tensor labels = tensor(new long[] { 1, 2, -100, 3, 0, -100, 5, 4 }, [2, 4]);
        double expected = 0;
        int counted = 0;
        for (int b = 0; b < 2; b++)
            for (int t = 0; t < 3; t++)
            {
                long label = labels[b, t + 1].item<long>();
                if (label == -100) continue;
                using Tensor logProbs = logits[b, t].log_softmax(0);
                expected -= logProbs[label].item<float>();
                counted++;
            }
        using Tensor loss = CausalLMLoss.Compute(logits, labels);
        Assert.Equal(expected / counted, loss.item<float>(), 5);
        // Logits that cover 3 virtual tokens in front (prompt learning): as PEFT labels them -100, none is
        // predicted, but the last one predicts each row's first real token, which counts.
        using Tensor virtualTokens = randn(2, 3, 6);
        using Tensor withVirtual = cat([virtualTokens, logits], 1);
        for (int b = 0; b < 2; b++)
        {
            using Tensor logProbs = virtualTokens[b, 2].log_softmax(0);
            expected -= logProbs[labels[b, 0].item<long>()].item<float>();
            counted++;
        }
        Assert.Equal(expected / counted, CausalLMLoss.Compute(withVirtual, labels).item<float>(), 5);
    }

    [Fact]
    public void Classification_loss_is_cross_entropy_and_regression_mse()
    {
        using Tensor logits = tensor(new float[] { 2, 0, 0, 1, 3, 0 }, [2, 3]);
        using Tensor labels = tensor(new long[] { 0, 2 });
        double ce = (-(2 - Math.Log(Math.Exp(2) + 2)) - (0 - Math.Log(Math.E + Math.Exp(3) + 1))) / 2;
        Assert.Equal(ce, SequenceClassificationLoss.Compute(logits, labels).item<float>(), 5);
        using Tensor single = tensor(new float[] { 0.5f, -1f }, [2, 1]);
        using Tensor targets = tensor(new float[] { 1f, 1f });
        Assert.Equal((0.25 + 4) / 2, SequenceClassificationLoss.Compute(single, targets).item<float>(), 6);
    }

    [Fact]
    public void Weight_decay_skips_biases_and_norm_layers()
    {
        using var catalog = TrainingCase.Catalog();
        (_, nn.Module model) = ModelPresets.Create("bert", "tiny", seed: 0);
        using var peft = new PeftModel(model, catalog);
        peft.AddAdapter("default", new JsonObject
        {
            ["peft_type"] = "LORA", ["task_type"] = "SEQ_CLS", ["r"] = 2, ["lora_alpha"] = 4, ["target_modules"] = new JsonArray("query", "value"),
            ["bias"] = "all", ["modules_to_save"] = new JsonArray("LayerNorm"),
        });
        ParameterGroups groups = ParameterGroups.Of(peft);
        Assert.Contains(groups.Decay, p => p.Name.Contains("lora_A", StringComparison.Ordinal));
        Assert.Contains(groups.Decay, p => p.Name.EndsWith("classifier.modules_to_save.default.weight", StringComparison.Ordinal));
        Assert.All(groups.Decay, p => Assert.DoesNotContain("bias", p.Name));
        Assert.All(groups.Decay, p => Assert.DoesNotContain("LayerNorm", p.Name));
        Assert.Contains(groups.NoDecay, p => p.Name.EndsWith("embeddings.LayerNorm.modules_to_save.default.weight", StringComparison.Ordinal));
        Assert.Contains(groups.NoDecay, p => p.Name.EndsWith("query.base_layer.bias", StringComparison.Ordinal));
        Assert.All(groups.NoDecay, p => Assert.True(p.Name.Contains("bias", StringComparison.Ordinal) || p.Name.Contains("LayerNorm", StringComparison.Ordinal), p.Name));
    }

    [Fact]
    public void Gradient_checkpointing_gives_the_same_loss_and_gradients_with_dropout()
    {
        using var catalog = TrainingCase.Catalog();
        var (loss1, grads1) = LossAndGrads(catalog, checkpointing: false);
        var (loss2, grads2) = LossAndGrads(catalog, checkpointing: true);
        Assert.Equal(loss1, loss2, 6);
        Assert.Equal(grads1.Keys, grads2.Keys);
        foreach ((string name, float[] g) in grads1)
        {
            Assert.Contains(g, v => v != 0);
            for (int i = 0; i < g.Length; i++) Assert.True(Math.Abs(g[i] - grads2[name][i]) < 1e-6, $"{name}[{i}]: {g[i]} vs {grads2[name][i]}");
        }
    }

    private static (double Loss, Dictionary<string, float[]> Grads) LossAndGrads(PeftHost.Engine.Plugins.PluginCatalog catalog, bool checkpointing)
    {
        (_, nn.Module model) = ModelFactory.Load(TrainingCase.BaseFolder);
        using (model)
        using (var peft = new PeftModel(model, catalog))
        {
            manual_seed(1);
            peft.AddAdapter("default", new JsonObject
            {
                ["peft_type"] = "LORA", ["r"] = 4, ["lora_alpha"] = 8, ["lora_dropout"] = 0.3, ["init_lora_weights"] = false,
                ["target_modules"] = new JsonArray("q_proj", "v_proj", "up_proj"),
            });
            ((IGradientCheckpointing)model).GradientCheckpointing = checkpointing;
            model.train();
            manual_seed(7);
            using Tensor ids = randint(0, 128, [3, 10]);
            using Tensor logits = peft.CausalLMForward(ids);
            using Tensor loss = CausalLMLoss.Compute(logits, ids);
            loss.backward();
            ((IGradientCheckpointing)model).BackwardCheckpointedLayers();
            var grads = ParameterGroups.Of(peft).All.ToDictionary(p => p.Name, p => p.Parameter.grad!.data<float>().ToArray());
            return (loss.item<float>(), grads);
        }
    }
}
