using System.Text.Json.Nodes;
using PeftHost.Abstractions.State;
using PeftHost.Engine.Peft;
using PeftHost.Engine.Plugins;
using PeftHost.Models;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace PeftHost.Tests.PeftReference;

/// <summary>
/// Replays a <c>train_*</c> case with a plain TorchSharp loop, the generator's own: the case's initial adapter
/// loaded trainable, <c>torch.optim.AdamW</c> over the trainable parameters of <see cref="PeftModel.NamedParameters"/>
/// (the case's lr, betas 0.9/0.999, eps 1e-8, weight decay 0.01), every step the mean causal-LM cross-entropy
/// of all rows with labels = inputs (shifted), backward, step. Then checks each step's loss, the loss after
/// training, the trained adapter's tensors (against the case's final_adapter/) and the trained model's logits.
/// </summary>
internal static class TrainingReplay
{
    public static void AssertTrainsLikeReference(string caseName)
    {
        var c = new PeftCase(caseName);
        JsonObject training = c.Meta["training"]!.AsObject();
        double lr = training["lr"]!.GetValue<double>();
        int steps = training["steps"]!.GetValue<int>();
        double weightDecay = training["weight_decay"]?.GetValue<double>() ?? 0.01;
        JsonObject recorded = JsonNode.Parse(File.ReadAllText(Path.Combine(c.Folder, "losses.json")))!.AsObject();
        double[] expectedLosses = recorded["losses"]!.AsArray().Select(l => l!.GetValue<double>()).ToArray();
        Assert.Equal(steps, expectedLosses.Length);

        using PluginCatalog catalog = PeftCase.Catalog();
        using nn.Module model = c.LoadBase();
        using PeftModel peft = PeftModel.FromPretrained(model, Path.Combine(c.Folder, "initial_adapter"), catalog, isTrainable: true);
        var trainable = peft.NamedParameters().Where(p => p.Parameter.requires_grad).ToList();
        Assert.NotEmpty(trainable);
        if (c.Meta["trained_parameters"] is JsonArray names)
            Assert.Equal(names.Select(n => n!.GetValue<string>()).Order(StringComparer.Ordinal), trainable.Select(p => p.Name).Order(StringComparer.Ordinal));

        using Tensor rows = Rows(c);
        model.train();
        var losses = new List<double>();
        using (var optimizer = optim.AdamW(trainable.Select(p => p.Parameter), lr, 0.9, 0.999, 1e-8, weightDecay))
        {
            for (int step = 0; step < steps; step++)
            {
                optimizer.zero_grad();
                using Tensor loss = Loss(peft, rows);
                loss.backward();
                losses.Add(loss.item<float>());
                optimizer.step();
            }
        }
        model.eval();
        double after;
        using (no_grad())
        using (Tensor loss = Loss(peft, rows))
            after = loss.item<float>();

        for (int i = 0; i < steps; i++)
            Assert.True(Math.Abs(losses[i] - expectedLosses[i]) < PeftCase.Tolerance, $"{caseName} step {i + 1}: loss {losses[i]}, reference {expectedLosses[i]}");
        Assert.True(Math.Abs(after - recorded["loss_after_training"]!.GetValue<double>()) < PeftCase.Tolerance, $"{caseName}: loss after training {after}");
        TestContext.Current.TestOutputHelper?.WriteLine($"{caseName}: losses {string.Join(", ", losses.Select(l => l.ToString("F5")))} -> {after:F5}");

        using AdapterState final = AdapterFolder.Read(Path.Combine(c.Folder, "final_adapter"), "default");
        using AdapterState mine = peft.ExportAdapter("default");
        AssertSameTensors(caseName, final.Tensors, mine.Tensors);
        AssertSameTensors(caseName, final.ModelTensors, mine.ModelTensors);

        using ModelInputs inputs = c.Inputs();
        using Tensor logits = PeftCase.CausalLogits(peft, inputs);
        c.AssertLogits(logits, "logits_final");
    }

    // The mean causal-LM cross-entropy of transformers' *ForCausalLM (labels = the rows, shifted by one).
    private static Tensor Loss(PeftModel peft, Tensor rows)
    {
        using var scope = NewDisposeScope();
        Tensor logits = peft.CausalLMForward(rows);
        long vocab = logits.shape[2];
        Tensor shifted = logits.narrow(1, 0, logits.shape[1] - 1).reshape(-1, vocab);
        Tensor labels = rows.narrow(1, 1, rows.shape[1] - 1).reshape(-1);
        return scope.MoveToOuter(nn.functional.cross_entropy(shifted, labels));
    }

    private static Tensor Rows(PeftCase c)
    {
        JsonArray data = JsonNode.Parse(File.ReadAllText(Path.Combine(c.Folder, "data.json")))!["input_ids"]!.AsArray();
        long[][] rows = data.Select(r => r!.AsArray().Select(v => v!.GetValue<long>()).ToArray()).ToArray();
        var flat = rows.SelectMany(r => r).ToArray();
        return tensor(flat, [rows.Length, rows[0].Length]);
    }

    private static void AssertSameTensors(string caseName, IReadOnlyDictionary<string, Tensor> expected, IReadOnlyDictionary<string, Tensor> actual)
    {
        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), actual.Keys.Order(StringComparer.Ordinal));
        foreach ((string key, Tensor e) in expected)
        {
            Assert.Equal(e.shape, actual[key].shape);
            double diff;
            using (Tensor d = (actual[key] - e).abs().max()) diff = d.item<float>();
            Assert.True(diff < PeftCase.Tolerance, $"{caseName}: trained tensor '{key}' differs from the reference by {diff}");
        }
    }
}
