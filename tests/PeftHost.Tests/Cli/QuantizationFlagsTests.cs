using System.Text.Json.Nodes;
using PeftHost.Formats.Safetensors;
using PeftHost.Models;
using PeftHost.Models.Checkpoint;
using PeftHost.Tests.Support;
using PeftHost.Training.Jobs;
using Xunit;
using static TorchSharp.torch;

namespace PeftHost.Tests.CommandLine;

/// <summary>
/// --load-in-4bit, --quant-type, --double-quant, --compute-dtype and --load-in-8bit on logits, generate and train:
/// the base quantized as it loads gives the lab's logits of the dequantized model; bad combinations are refused by flag.
/// </summary>
public sealed class QuantizationFlagsTests
{
    [Theory]
    [InlineData("llama_nf4_double_quant", new[] { "--load-in-4bit", "--quant-type", "nf4", "--double-quant" })]
    [InlineData("llama_fp4", new[] { "--load-in-4bit", "--quant-type", "fp4", "--compute-dtype", "f32" })]
    [InlineData("llama_int8", new[] { "--load-in-8bit" })]
    public void Logits_of_a_base_quantized_as_it_loads_are_the_labs_quantized_logits(string model, string[] flags)
    {
        using var dir = new ScratchFolder();
        string output = Path.Combine(dir.Path, "logits.safetensors");
        (int code, _, string stderr) = Cli.Run([
            "logits", "--model", Path.Combine(BnbCases.Model(model), "base"), "--inputs", Path.Combine(BnbCases.Model(model), "inputs.json"), "--out", output, .. flags]);
        Assert.True(code == 0, stderr);
        using var file = SafetensorsFile.Open(output);
        using Tensor logits = TensorBridge.Read(file, "logits");
        using Tensor expected = BnbCases.Logits(model, "quantized");
        using Tensor full = BnbCases.Logits(model, "base");
        Assert.True(Tensors.MaxAbsDiff(logits, expected) < 1e-4, $"{Tensors.MaxAbsDiff(logits, expected)}");
        Assert.True(Tensors.MaxAbsDiff(logits, full) > 1e-4, "the logits are the full-precision base's");
    }

    [Theory]
    [InlineData(new[] { "--quant-type", "nf4" }, "--quant-type needs --load-in-4bit")]
    [InlineData(new[] { "--double-quant" }, "--double-quant needs --load-in-4bit")]
    [InlineData(new[] { "--load-in-8bit", "--compute-dtype", "bf16" }, "--compute-dtype needs --load-in-4bit")]
    [InlineData(new[] { "--load-in-4bit", "--load-in-8bit" }, "--load-in-4bit and --load-in-8bit: choose one")]
    [InlineData(new[] { "--load-in-4bit", "--quant-type", "q4_0" }, "--quant-type 'q4_0': expected nf4 or fp4")]
    [InlineData(new[] { "--load-in-4bit", "--compute-dtype", "f64" }, "--compute-dtype 'f64': expected f32, bf16 or f16")]
    [InlineData(new[] { "--load-in-4bit", "--backend", "llama" }, "runs on the torch backend; the llama backend runs a GGUF base")]
    public void Bad_quantization_flags_are_refused_by_name(string[] flags, string message)
    {
        using var dir = new ScratchFolder();
        string model = "llama_nf4_double_quant";
        (int code, _, string stderr) = Cli.Run([
            "logits", "--model", Path.Combine(BnbCases.Model(model), "base"), "--inputs", Path.Combine(BnbCases.Model(model), "inputs.json"),
            "--out", Path.Combine(dir.Path, "l.safetensors"), .. flags]);
        Assert.Equal(2, code); // a usage error (the exit-code table)
        Assert.Contains(message, stderr);
    }

    [Theory]
    [InlineData(new[] { "--quantize", "q4_0" }, "--quantize 'q4_0': expected nf4, fp4 or int8")]
    [InlineData(new[] { "--double-quant" }, "--double-quant needs --quantize nf4 or fp4")]
    [InlineData(new[] { "--quantize", "int8", "--double-quant" }, "--double-quant is for 4-bit")]
    [InlineData(new[] { "--quantize", "nf4", "--dtype", "bf16" }, "a quantized output keeps its other weights in float32")]
    public void Bad_merge_quantize_flags_are_refused_by_name(string[] flags, string message)
    {
        using var dir = new ScratchFolder();
        string adapter = Path.Combine(Repo.Root, "tests", "fixtures", "conformance", "lora_qv", "adapter");
        (int code, _, string stderr) = Cli.Run([
            "merge", "--model", Path.Combine(BnbCases.Model("llama_nf4_double_quant"), "quantized"), "--adapter", adapter, "--out", Path.Combine(dir.Path, "out"), .. flags]);
        Assert.Equal(2, code);
        Assert.Contains(message, stderr);
    }

    [Fact]
    public void Generate_and_train_take_the_flags()
    {
        using var dir = new ScratchFolder();
        string modelDir = Path.Combine(dir.Path, "tiny");
        ModelPresets.Write("llama", "tiny", modelDir, seed: 0);
        (int code, string stdout, string stderr) = Cli.Run("generate", "--model", modelDir, "--prompt", "abcd=", "--max-new-tokens", "3", "--load-in-4bit", "--double-quant");
        Assert.True(code == 0, stderr + stdout);
        Assert.Contains("nf4 + double quant, compute float32 base", stderr);

        string config = Path.Combine(dir.Path, "lora.json");
        File.WriteAllText(config, UppercaseTask.AdapterConfig().ToJsonString());
        string output = Path.Combine(dir.Path, "out");
        string data = Path.Combine(Repo.Root, "Host", "Cli", "Demo", UppercaseTask.TrainFile);
        (code, stdout, stderr) = Cli.Run("train", "--model", modelDir, "--data", data, "--adapter-config", config, "--out", output,
            "--set", "max_steps=2", "--set", "per_device_train_batch_size=4", "--set", "save_strategy=steps", "--set", "save_steps=2",
            "--load-in-4bit", "--quant-type", "fp4", "--threads", "1");
        Assert.True(code == 0, stderr + stdout);
        var run = (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(output, "checkpoint-2", "run_settings.json")))!;
        Assert.Equal("fp4", run["quantization_config"]?["bnb_4bit_quant_type"]?.GetValue<string>());
        Assert.True(run["quantization_config"]?["load_in_4bit"]?.GetValue<bool>());
        Assert.True(File.Exists(Path.Combine(output, "adapter_model.safetensors")));
    }
}
