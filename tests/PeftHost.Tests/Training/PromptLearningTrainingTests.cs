using System.Text.Json.Nodes;
using PeftHost.Engine.Peft;
using PeftHost.Models;
using PeftHost.Tests.Support;
using PeftHost.Training.Arguments;
using PeftHost.Training.Loop;
using Xunit;
using static TorchSharp.torch;

namespace PeftHost.Tests.Training;

/// <summary>
/// Prefix tuning (with and without its projection) and p-tuning (MLP and LSTM encoders) train in the
/// Trainer: the loss falls, and the saved adapter (PEFT saves the encoder's output as the prompt) loads on
/// a fresh base with the trained model's logits. PEFT 0.13.2 cannot train prefix tuning on the lab's
/// transformers (LAB.md), so there is no step-by-step reference for these; prompt tuning has one
/// (TrainingReferenceTests).
/// </summary>
public sealed class PromptLearningTrainingTests : IDisposable
{
    private readonly ScratchFolder _dir = new();

    public void Dispose() => _dir.Dispose();

    // The base's sizes, as PEFT's _prepare_prompt_learning_config fills them (a prefix has the key/value heads: 2 of 4, 16 wide).
    public static TheoryData<string, string> Configs => new()
    {
        { "prefix", """{"peft_type": "PREFIX_TUNING", "task_type": "CAUSAL_LM", "num_virtual_tokens": 4, "num_layers": 2, "token_dim": 16, "num_attention_heads": 2}""" },
        { "prefix_projection", """{"peft_type": "PREFIX_TUNING", "task_type": "CAUSAL_LM", "num_virtual_tokens": 4, "num_layers": 2, "token_dim": 16, "num_attention_heads": 2, "prefix_projection": true, "encoder_hidden_size": 16}""" },
        { "p_tuning_mlp", """{"peft_type": "P_TUNING", "task_type": "CAUSAL_LM", "num_virtual_tokens": 4, "num_layers": 2, "token_dim": 32, "num_attention_heads": 4, "encoder_reparameterization_type": "MLP", "encoder_hidden_size": 16}""" },
        { "p_tuning_lstm", """{"peft_type": "P_TUNING", "task_type": "CAUSAL_LM", "num_virtual_tokens": 4, "num_layers": 2, "token_dim": 32, "num_attention_heads": 4, "encoder_reparameterization_type": "LSTM", "encoder_hidden_size": 16}""" },
    };

    [Theory]
    [MemberData(nameof(Configs))]
    public void Trains_with_falling_loss_and_the_saved_adapter_loads_with_the_trained_logits(string name, string config)
    {
        using var catalog = TrainingCase.Catalog();
        string output = Path.Combine(_dir.Path, name);
        nn.Module model = ModelFactory.Load(TrainingCase.BaseFolder).Model;
        using Tensor ids = tensor(File.ReadLines(TrainingCase.DataFile)
            .SelectMany(l => ((JsonArray)JsonNode.Parse(l)!["input_ids"]!).Select(v => v!.GetValue<long>())).ToArray()).view(4, -1);
        Tensor trained;
        using (var peft = new PeftModel(model, catalog))
        {
            manual_seed(4);
            peft.AddAdapter("default", (JsonObject)JsonNode.Parse(config)!);
            TrainingArguments args = TrainingArgumentsReader.Parse(new JsonObject
            {
                ["output_dir"] = output, ["max_steps"] = 12, ["per_device_train_batch_size"] = 4, ["learning_rate"] = 3e-2,
                ["lr_scheduler_type"] = "constant", ["logging_steps"] = 1, ["save_strategy"] = "no", ["seed"] = 5,
            }, name);
            var trainer = new Trainer(peft, args, TrainingCase.Data(), options: new TrainerOptions { WriteCurves = false });
            Assert.Equal(TrainStatus.Completed, trainer.Train(cancel: TestContext.Current.CancellationToken).Status);
            var losses = trainer.State.LogHistory.Where(e => e.ContainsKey("loss")).Select(e => e["loss"]!.GetValue<double>()).ToList();
            Assert.True(losses[^1] < losses[0] - 0.05, $"{name}: the loss did not fall: {string.Join(", ", losses.Select(l => l.ToString("F4")))}");
            using (no_grad()) trained = peft.CausalLMForward(ids);
        }
        model.Dispose();

        nn.Module fresh = ModelFactory.Load(TrainingCase.BaseFolder).Model;
        using (PeftModel loaded = PeftModel.FromPretrained(fresh, output, catalog))
        using (no_grad())
        using (Tensor logits = loaded.CausalLMForward(ids))
        {
            Assert.Equal(trained.shape, logits.shape);
            double diff = Tensors.MaxAbsDiff(logits, trained);
            Assert.True(diff < 1e-4, $"{name}: the saved adapter's logits differ from the trained model's by {diff}");
        }
        fresh.Dispose();
        trained.Dispose();
    }
}
