using System.Text.Json.Nodes;
using PeftHost.Engine.Peft;
using PeftHost.Models;
using PeftHost.Tests.Support;
using PeftHost.Tokenizers;
using PeftHost.Training.Arguments;
using PeftHost.Training.Jobs;
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

    private const string Prefix = """{"peft_type": "PREFIX_TUNING", "task_type": "CAUSAL_LM", "num_virtual_tokens": 4, "num_layers": 2, "token_dim": 16, "num_attention_heads": 2}""";

    // The base's sizes, as PEFT's _prepare_prompt_learning_config fills them (a prefix has the key/value heads: 2 of 4, 16 wide).
    public static TheoryData<string, string> Configs => new()
    {
        { "prefix", Prefix },
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

    [Fact]
    public void The_prefix_gradient_through_the_attention_cache_matches_finite_differences()
    {
        using var catalog = TrainingCase.Catalog();
        nn.Module model = ModelFactory.Load(TrainingCase.BaseFolder).Model;
        using Tensor ids = tensor(((JsonArray)JsonNode.Parse(File.ReadLines(TrainingCase.DataFile).First())!["input_ids"]!)
            .Select(v => v!.GetValue<long>()).ToArray()).view(1, -1);
        using (var peft = new PeftModel(model, catalog))
        {
            manual_seed(4);
            peft.AddAdapter("default", (JsonObject)JsonNode.Parse(Prefix)!);
            var prefix = peft.NamedParameters().Single(p => p.Parameter.requires_grad).Parameter;
            double Loss()
            {
                using Tensor logits = peft.CausalLMForward(ids);
                using Tensor loss = PeftHost.Training.Loss.CausalLMLoss.Compute(logits, ids);
                return loss.item<float>();
            }
            using (Tensor logits = peft.CausalLMForward(ids))
            using (Tensor loss = PeftHost.Training.Loss.CausalLMLoss.Compute(logits, ids))
                loss.backward();
            using Tensor grad = prefix.grad!.detach().clone().flatten();
            using Tensor flat = prefix.detach().flatten();
            // Central differences on the entries with the largest gradients (float32: a step of 1e-2 keeps rounding small).
            long[] entries = grad.abs().argsort(descending: true).narrow(0, 0, 5).data<long>().ToArray();
            const double h = 1e-2;
            foreach (long i in entries)
            {
                double original = flat[i].item<float>(), plus, minus;
                using (no_grad()) flat[i].fill_(original + h);
                plus = Loss();
                using (no_grad()) flat[i].fill_(original - h);
                minus = Loss();
                using (no_grad()) flat[i].fill_(original);
                double numeric = (plus - minus) / (2 * h), analytic = grad[i].item<float>();
                Assert.True(Math.Abs(numeric - analytic) <= 2e-2 * Math.Abs(analytic) + 1e-4, $"prefix entry {i}: autograd {analytic}, finite differences {numeric}");
            }
        }
        model.Dispose();
    }

    [Theory]
    [InlineData(new[] { 1, 17, 42 }, new long[] { 1, 17, 42, 1, 17, 42 })] // shorter than the prompt: repeated
    [InlineData(new[] { 1, 17, 42, 9, 8, 7, 6, 5 }, new long[] { 1, 17, 42, 9, 8, 7 })] // longer: cut
    public void Prompt_tuning_TEXT_initialises_from_the_base_embeddings_of_the_tokenized_text(int[] tokenIds, long[] expectedIds)
    {
        using var catalog = TrainingCase.Catalog();
        nn.Module model = ModelFactory.Load(TrainingCase.BaseFolder).Model;
        string? asked = null;
        using (var peft = new PeftModel(model, catalog) { Tokenize = text => { asked = text; return tokenIds; } })
        {
            peft.AddAdapter("default", new JsonObject
            {
                ["peft_type"] = "PROMPT_TUNING", ["task_type"] = "CAUSAL_LM", ["num_virtual_tokens"] = 6, ["token_dim"] = 32,
                ["num_layers"] = 2, ["num_attention_heads"] = 4, ["prompt_tuning_init"] = "TEXT",
                ["prompt_tuning_init_text"] = "Classify the text:", ["tokenizer_name_or_path"] = "base",
            });
            Assert.Equal("Classify the text:", asked);
            using var state = peft.ExportAdapter("default");
            // PEFT: word_embeddings(init_token_ids) as the prompt, the ids cut or repeated to num_virtual_tokens.
            using Tensor table = model.named_parameters().Single(p => p.name.EndsWith("embed_tokens.weight", StringComparison.Ordinal)).parameter.detach();
            using Tensor expected = table.index_select(0, tensor(expectedIds));
            Assert.Equal(0, Tensors.MaxAbsDiff(expected, state.Tensors["prompt_embeddings"]));
        }
        model.Dispose();
    }

    [Fact]
    public void Prompt_tuning_TEXT_without_a_tokenizer_is_refused_saying_so()
    {
        using var catalog = TrainingCase.Catalog();
        nn.Module model = ModelFactory.Load(TrainingCase.BaseFolder).Model;
        using (var peft = new PeftModel(model, catalog))
        {
            Exception e = Assert.ThrowsAny<Exception>(() => peft.AddAdapter("default", new JsonObject
            {
                ["peft_type"] = "PROMPT_TUNING", ["task_type"] = "CAUSAL_LM", ["num_virtual_tokens"] = 6, ["token_dim"] = 32,
                ["num_layers"] = 2, ["num_attention_heads"] = 4, ["prompt_tuning_init"] = "TEXT",
                ["prompt_tuning_init_text"] = "Classify the text:", ["tokenizer_name_or_path"] = "base",
            }));
            Assert.Contains("the host gave no tokenizer", e.ToString());
            Assert.Empty(peft.Adapters);
        }
        model.Dispose();
    }

    [Fact]
    public void A_training_job_initialises_TEXT_prompt_tuning_with_the_model_folders_tokenizer()
    {
        string modelDir = Path.Combine(_dir.Path, "tiny");
        ModelPresets.Write("llama", "tiny", modelDir, seed: 0);
        string config = Path.Combine(_dir.Path, "prompt.json");
        const string text = "Uppercase the word:";
        File.WriteAllText(config, new JsonObject
        {
            ["peft_type"] = "PROMPT_TUNING", ["task_type"] = "CAUSAL_LM", ["num_virtual_tokens"] = 8, ["token_dim"] = 64,
            ["num_layers"] = 2, ["num_attention_heads"] = 4, ["prompt_tuning_init"] = "TEXT", ["prompt_tuning_init_text"] = text,
            ["tokenizer_name_or_path"] = modelDir,
        }.ToJsonString());
        string output = Path.Combine(_dir.Path, "out");
        // A learning rate of 0: the saved prompt is the initial one.
        FineTuningJob.Run(new FineTuningRequest
        {
            ModelFolder = modelDir, DataFile = Path.Combine(Repo.Root, "Host", "Cli", "Demo", UppercaseTask.TrainFile), AdapterConfigFile = config,
            Arguments = new JsonObject { ["output_dir"] = output, ["max_steps"] = 1, ["per_device_train_batch_size"] = 2, ["learning_rate"] = 0.0, ["lr_scheduler_type"] = "constant", ["save_strategy"] = "no" },
            PluginsFolder = PluginDirs.Installed,
        }, cancel: TestContext.Current.CancellationToken);

        // PEFT: tokenizer(text)["input_ids"] (special tokens included), cut or repeated to the virtual tokens.
        IReadOnlyList<int> ids = TokenizerLoader.FromDirectory(modelDir).Encode(text);
        long[] expectedIds = [.. Enumerable.Repeat(ids, 8).SelectMany(i => i).Take(8).Select(i => (long)i)];
        nn.Module model = ModelFactory.Load(modelDir).Model;
        using Tensor table = model.named_parameters().Single(p => p.name.EndsWith("embed_tokens.weight", StringComparison.Ordinal)).parameter.detach();
        using Tensor expected = table.index_select(0, tensor(expectedIds));
        using var file = PeftHost.Formats.Safetensors.SafetensorsFile.Open(Path.Combine(output, "adapter_model.safetensors"));
        using Tensor saved = PeftHost.Models.Checkpoint.TensorBridge.Read(file, "prompt_embeddings");
        Assert.Equal(0, Tensors.MaxAbsDiff(expected, saved));
        model.Dispose();
    }
}
