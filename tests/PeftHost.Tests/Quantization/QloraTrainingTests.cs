using System.Text.Json.Nodes;
using PeftHost.Abstractions.Layers;
using PeftHost.Engine.Peft;
using PeftHost.Formats.BitsAndBytes;
using PeftHost.Models;
using PeftHost.Tests.Support;
using PeftHost.Tests.Training;
using PeftHost.Tokenizers;
using PeftHost.Training.Arguments;
using PeftHost.Training.Jobs;
using PeftHost.Training.Loop;
using Xunit;
using static TorchSharp.torch;

namespace PeftHost.Tests.Quantization;

/// <summary>
/// QLoRA on the demo's rule task (Host/Cli/Demo, as RuleTaskTests trains it on the float base): the tiny Llama
/// loaded in NF4 with double quantization (the training config's quantization_config, transformers' fields),
/// the same LoRA adapter and settings; exact match on the 100 held-out words reaches the training issue's bar
/// (90 %) on the 4-bit base, with the adapter reloaded from disk.
/// </summary>
public sealed class QloraTrainingTests
{
    private static readonly BitsAndBytesConfig Nf4 = new() { LoadIn4Bit = true, QuantType = FourBitType.Nf4, UseDoubleQuant = true };

    [Fact]
    public void Qlora_on_an_nf4_base_learns_the_rule_task_to_at_least_90_percent()
    {
        using var run = new RuleTaskRun();
        TrainResult result = run.Train(edit: settings =>
        {
            settings["quantization_config"] = new JsonObject
            {
                ["load_in_4bit"] = true, ["bnb_4bit_quant_type"] = "nf4", ["bnb_4bit_use_double_quant"] = true, ["bnb_4bit_compute_dtype"] = "float32",
            };
            settings["save_strategy"] = "steps"; // one checkpoint at the end: its run settings say what base was trained on
            settings["save_steps"] = 250;
        });
        Assert.Equal(250, result.GlobalStep);
        var state = (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(run.Output, "adapter_config.json")))!;
        Assert.Equal("LORA", state["peft_type"]!.GetValue<string>());
        var settingsSaved = (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(run.Output, "checkpoint-250", "run_settings.json")))!;
        Assert.Equal("nf4", settingsSaved["quantization_config"]?["bnb_4bit_quant_type"]?.GetValue<string>());

        nn.Module quantized = ModelFactory.Load(run.ModelDir, ScalarType.Float32, null, Nf4).Model;
        Assert.Equal(14, quantized.modules().OfType<QuantizedLinear>().Count()); // 7 projections x 2 layers; lm_head stays float
        (double after, var answers) = run.Score(quantized);
        TestContext.Current.TestOutputHelper?.WriteLine($"QLoRA exact match {after:P0}; e.g. {string.Join(", ", answers.Take(5).Select(a => a.Prompt + a.Output))}");
        Assert.True(after >= 0.9, $"exact match after QLoRA training is {after:P0}: {RuleTaskRun.Wrong(answers)}");
        // `pefthost evaluate --load-in-4bit --double-quant` scores on the same 4-bit base.
        EvaluationJob.Result exact = EvaluationJob.Run(run.ModelDir, run.Output, RuleTaskRun.HeldOut, "exact_match", PluginDirs.Installed, maxNewTokens: 8,
            cancel: TestContext.Current.CancellationToken, quantization: Nf4);
        Assert.Equal(after, exact.Value);
    }

    [Fact]
    public void Gradient_checkpointing_on_a_quantized_base_trains_as_without_it()
    {
        // The quantized layers' backward decodes the weight again; under checkpointing it runs on recomputed layers.
        using var dir = new ScratchFolder();
        string modelDir = Path.Combine(dir.Path, "tiny");
        ModelPresets.Write("llama", "tiny", modelDir, seed: 0);
        string config = Path.Combine(dir.Path, "lora.json");
        File.WriteAllText(config, UppercaseTask.AdapterConfig().ToJsonString());
        string data = Path.Combine(Repo.Root, "Host", "Cli", "Demo", UppercaseTask.TrainFile);
        TrainResult Train(bool checkpointing)
        {
            JsonObject settings = UppercaseTask.Settings(Path.Combine(dir.Path, checkpointing ? "ckpt" : "plain"));
            settings["max_steps"] = 4;
            settings["gradient_checkpointing"] = checkpointing;
            return FineTuningJob.Run(new FineTuningRequest
            {
                ModelFolder = modelDir, DataFile = data, AdapterConfigFile = config, Arguments = settings, PluginsFolder = PluginDirs.Installed, Quantization = Nf4,
            }, cancel: TestContext.Current.CancellationToken);
        }
        TrainResult plain = Train(false), checkpointed = Train(true);
        Assert.Equal(4, checkpointed.GlobalStep);
        Assert.Equal(plain.TrainLoss, checkpointed.TrainLoss, 5);
        using var a = Formats.Safetensors.SafetensorsFile.Open(Path.Combine(plain.OutputDir, "adapter_model.safetensors"));
        using var b = Formats.Safetensors.SafetensorsFile.Open(Path.Combine(checkpointed.OutputDir, "adapter_model.safetensors"));
        foreach (var t in a.Tensors)
        {
            float[] x = a.ReadSingles(t.Name), y = b.ReadSingles(t.Name);
            Assert.True(x.Zip(y).Max(p => Math.Abs(p.First - p.Second)) < 1e-5, t.Name);
        }
    }

    [Fact]
    public void A_quantization_config_that_is_not_an_object_or_asks_for_nothing_is_refused_by_name()
    {
        using var dir = new ScratchFolder();
        string modelDir = Path.Combine(dir.Path, "tiny");
        ModelPresets.Write("llama", "tiny", modelDir, seed: 0);
        string config = Path.Combine(dir.Path, "lora.json");
        File.WriteAllText(config, UppercaseTask.AdapterConfig().ToJsonString());
        string data = Path.Combine(Repo.Root, "Host", "Cli", "Demo", UppercaseTask.TrainFile);
        Exception Run(JsonNode quantization)
        {
            JsonObject settings = UppercaseTask.Settings(Path.Combine(dir.Path, "out"));
            settings["quantization_config"] = quantization;
            return Assert.Throws<TrainingArgumentsException>(() => FineTuningJob.Run(new FineTuningRequest
            {
                ModelFolder = modelDir, DataFile = data, AdapterConfigFile = config, Arguments = settings,
                ArgumentsSource = "train.json", PluginsFolder = PluginDirs.Installed,
            }));
        }
        Assert.Contains("train.json: field 'quantization_config' must be an object", Run("nf4").Message);
        Assert.Contains("neither load_in_4bit nor load_in_8bit", Run(new JsonObject { ["bnb_4bit_quant_type"] = "nf4" }).Message);
        Assert.Contains("'bnb_4bit_quant_typ' is not a BitsAndBytesConfig field", Run(new JsonObject { ["load_in_4bit"] = true, ["bnb_4bit_quant_typ"] = "nf4" }).Message);
    }
}
