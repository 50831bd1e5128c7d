using System.Text;
using System.Text.Json.Nodes;
using PeftHost.Abstractions.Layers;
using PeftHost.Formats.BitsAndBytes;
using PeftHost.Formats.Safetensors;
using PeftHost.Models;
using PeftHost.Models.Config;
using PeftHost.Models.Quantization;
using PeftHost.Tests.Support;
using TorchSharp;
using TorchSharp.Modules;
using Xunit;
using static TorchSharp.torch;

namespace PeftHost.Tests.Quantization;

/// <summary>Checkpoints in the layout transformers saves with bitsandbytes: reading, quantizing on load, writing, bad input.</summary>
public sealed class BitsAndBytesCheckpointTests
{
    public static TheoryData<string> Cases => new() { "llama_nf4_double_quant", "llama_fp4", "llama_int8", "gpt2_nf4_double_quant", "llama_nf4_skip_mlp" };

    private static BitsAndBytesConfig CaseConfig(string name)
    {
        string path = Path.Combine(BnbCases.Model(name), "quantized", "config.json");
        return BitsAndBytesConfig.Parse(JsonNode.Parse(File.ReadAllText(path))!["quantization_config"]!.AsObject(), path);
    }

    private static IReadOnlyList<string> QuantizedModules(string name) =>
        [.. JsonNode.Parse(File.ReadAllText(Path.Combine(BnbCases.Model(name), "meta.json")))!["quantized_modules"]!.AsArray().Select(n => n!.GetValue<string>())];

    private static Tensor Logits(nn.Module model, string name)
    {
        using Tensor ids = BnbCases.InputIds(name);
        using (no_grad()) return ((ICausalLM)model).Forward(ids);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void A_transformers_bitsandbytes_folder_loads_and_gives_the_dequantized_logits(string name)
    {
        (_, nn.Module model) = ModelFactory.Load(Path.Combine(BnbCases.Model(name), "quantized"));
        using (model)
        {
            var quantized = model.named_modules().Where(m => m.module is QuantizedLinear).Select(m => m.name).ToList();
            Assert.Equal(QuantizedModules(name), quantized);
            Assert.IsType<Linear>(model.named_modules().Single(m => m.name == "lm_head").module);
            using Tensor logits = Logits(model, name);
            using Tensor expected = BnbCases.Logits(name, "quantized");
            Assert.True(Tensors.MaxAbsDiff(logits, expected) < 1e-4, $"max |diff| {Tensors.MaxAbsDiff(logits, expected)}");
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Quantizing_the_full_precision_base_on_load_writes_the_same_tensors_byte_for_byte(string name)
    {
        using var scratch = new ScratchFolder();
        BitsAndBytesConfig config = CaseConfig(name);
        (ModelConfig c, nn.Module model) = ModelFactory.Load(Path.Combine(BnbCases.Model(name), "base"), ScalarType.Float32, null, config);
        using (model)
        {
            using Tensor logits = Logits(model, name);
            using Tensor expected = BnbCases.Logits(name, "quantized");
            Assert.True(Tensors.MaxAbsDiff(logits, expected) < 1e-4, $"max |diff| {Tensors.MaxAbsDiff(logits, expected)}");
            ModelFactory.Save(model, c, scratch.Path);
        }
        using var ours = SafetensorsFile.Open(Path.Combine(scratch.Path, "model.safetensors"));
        using var theirs = SafetensorsFile.Open(Path.Combine(BnbCases.Model(name), "quantized", "model.safetensors"));
        Assert.Equal(theirs.Tensors.Select(t => t.Name).Order(StringComparer.Ordinal), ours.Tensors.Select(t => t.Name).Order(StringComparer.Ordinal));
        foreach (SafetensorsTensorInfo t in theirs.Tensors)
        {
            SafetensorsTensorInfo o = ours.Info(t.Name);
            Assert.True(t.DType == o.DType && t.Shape.SequenceEqual(o.Shape), $"{t.Name}: {o.DType} {o.ShapeText}, transformers wrote {t.DType} {t.ShapeText}");
            Assert.True(theirs.GetBytes(t.Name).SequenceEqual(ours.GetBytes(t.Name)), $"{t.Name} differs");
        }
        JsonNode theirConfig = JsonNode.Parse(File.ReadAllText(Path.Combine(BnbCases.Model(name), "quantized", "config.json")))!["quantization_config"]!;
        JsonNode ourConfig = JsonNode.Parse(File.ReadAllText(Path.Combine(scratch.Path, "config.json")))!["quantization_config"]!;
        Assert.True(JsonNode.DeepEquals(theirConfig, ourConfig), ourConfig.ToJsonString());
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void A_folder_written_here_reads_back_identically(string name)
    {
        using var scratch = new ScratchFolder();
        string first = Path.Combine(scratch.Path, "first"), second = Path.Combine(scratch.Path, "second");
        (ModelConfig c1, nn.Module m1) = ModelFactory.Load(Path.Combine(BnbCases.Model(name), "quantized"));
        Tensor logits1;
        using (m1)
        {
            logits1 = Logits(m1, name);
            ModelFactory.Save(m1, c1, first);
        }
        (ModelConfig c2, nn.Module m2) = ModelFactory.Load(first);
        using (logits1)
        using (m2)
        {
            using Tensor logits2 = Logits(m2, name);
            Assert.Equal(0.0, Tensors.MaxAbsDiff(logits1, logits2));
            ModelFactory.Save(m2, c2, second);
        }
        Assert.Equal(File.ReadAllBytes(Path.Combine(first, "model.safetensors")), File.ReadAllBytes(Path.Combine(second, "model.safetensors")));
        Assert.Equal(File.ReadAllText(Path.Combine(first, "config.json")), File.ReadAllText(Path.Combine(second, "config.json")));
    }

    [Fact]
    public void Skip_modules_stay_in_full_precision()
    {
        (_, nn.Module model) = ModelFactory.Load(Path.Combine(BnbCases.Model("llama_nf4_skip_mlp"), "quantized"));
        using (model)
        {
            foreach ((string path, nn.Module m) in model.named_modules())
            {
                if (path.Contains(".mlp.") || path == "lm_head") Assert.IsType<Linear>(m);
                if (path.EndsWith("_proj", StringComparison.Ordinal) && path.Contains("self_attn")) Assert.IsType<Linear4bit>(m);
            }
        }
    }

    [Fact]
    public void A_compute_dtype_may_be_asked_of_a_quantized_folder_but_not_another_quantization()
    {
        string folder = Path.Combine(BnbCases.Model("llama_nf4_double_quant"), "quantized");
        var bf16 = new BitsAndBytesConfig { LoadIn4Bit = true, QuantType = FourBitType.Nf4, UseDoubleQuant = true, ComputeDType = "bfloat16" };
        (_, nn.Module model) = ModelFactory.Load(folder, ScalarType.Float32, null, bf16);
        using (model)
            Assert.All(model.modules().OfType<Linear4bit>(), l => Assert.Equal(ScalarType.BFloat16, l.ComputeDtype));
        var fp4 = new BitsAndBytesConfig { LoadIn4Bit = true, QuantType = FourBitType.Fp4 };
        var e = Assert.Throws<InvalidDataException>(() => ModelFactory.Load(folder, ScalarType.Float32, null, fp4));
        Assert.Contains("already quantized", e.Message);
    }

    public static TheoryData<string, string, string> BrokenCheckpoints => new()
    {
        { "llama_nf4_double_quant", "drop:model.layers.0.self_attn.q_proj.weight.absmax", "tensor 'model.layers.0.self_attn.q_proj.weight.absmax' is missing" },
        { "llama_fp4", "drop:model.layers.1.mlp.down_proj.weight.absmax", "tensor 'model.layers.1.mlp.down_proj.weight.absmax' is missing" },
        { "llama_fp4", "short:model.layers.0.self_attn.k_proj.weight.absmax", "tensor 'model.layers.0.self_attn.k_proj.weight.absmax' is F32 [7], expected F32 [8]" },
        { "llama_nf4_double_quant", "short:model.layers.0.self_attn.v_proj.weight.nested_absmax", "model.layers.0.self_attn.v_proj.weight.nested_absmax" },
        { "llama_nf4_double_quant", "quant_type:model.layers.0.mlp.up_proj.weight.quant_state.bitsandbytes__nf4", "Tensor 'model.layers.0.mlp.up_proj.weight.quant_state.bitsandbytes__nf4': unknown 4-bit quant_type 'nf5'" },
        { "llama_nf4_double_quant", "rename:model.layers.0.mlp.up_proj.weight.quant_state.bitsandbytes__nf4", "'model.layers.0.mlp.up_proj.weight.quant_state.bitsandbytes__int4' names an unknown quant type 'int4'" },
        { "llama_nf4_double_quant", "drop:model.layers.1.self_attn.o_proj.weight.quant_state.bitsandbytes__nf4", "'model.layers.1.self_attn.o_proj.weight.quant_state.bitsandbytes__nf4' is missing" },
        { "llama_nf4_double_quant", "short:model.layers.0.self_attn.q_proj.weight", "tensor 'model.layers.0.self_attn.q_proj.weight' is U8 [511, 1], expected [512, 1]" },
        { "llama_int8", "drop:model.layers.0.self_attn.q_proj.SCB", "tensor 'model.layers.0.self_attn.q_proj.SCB' is missing" },
        { "llama_int8", "format:model.layers.0.self_attn.q_proj.weight_format", "tensor 'model.layers.0.self_attn.q_proj.weight_format' is 1 (col32)" },
        { "llama_int8", "drop:model.layers.1.mlp.gate_proj.weight", "tensor 'model.layers.1.mlp.gate_proj.weight' is missing" },
    };

    [Theory]
    [MemberData(nameof(BrokenCheckpoints))]
    public void Bad_quantized_tensors_are_errors_naming_them(string name, string edit, string expected)
    {
        using var scratch = new ScratchFolder();
        string[] parts = edit.Split(':', 2);
        (string action, string target) = (parts[0], parts[1]);
        BnbCases.CopyQuantized(name, scratch.Path, t =>
        {
            if (t.Name != target) return t;
            using var ms = new MemoryStream();
            t.WriteData(ms);
            byte[] data = ms.ToArray();
            return action switch
            {
                "drop" => null,
                "short" => SafetensorsWriteTensor.FromBytes(t.Name, t.DType, [t.Shape[0] - 1, .. t.Shape[1..]], data[..^t.DType.Size()]),
                "quant_type" => SafetensorsWriteTensor.FromBytes(t.Name, t.DType, [data.Length], Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(data).Replace("\"nf4\"", "\"nf5\""))),
                "rename" => SafetensorsWriteTensor.FromBytes(t.Name.Replace("__nf4", "__int4"), t.DType, t.Shape, data),
                "format" => SafetensorsWriteTensor.FromBytes(t.Name, t.DType, t.Shape, new byte[] { 1 }),
                _ => throw new ArgumentException(action),
            };
        });
        var e = Assert.Throws<InvalidDataException>(() => ModelFactory.Load(scratch.Path));
        Assert.Contains(expected, e.Message);
    }

    [Theory]
    [InlineData("llm_int8_has_fp16_weight", "true", "llm_int8_has_fp16_weight")]
    [InlineData("bnb_4bit_quant_type", "\"int4\"", "bnb_4bit_quant_type")]
    [InlineData("bnb_4bit_quant_storage", "\"bfloat16\"", "bnb_4bit_quant_storage")]
    [InlineData("bnb_4bit_offload", "true", "'bnb_4bit_offload'")]
    public void Quantization_config_fields_not_honoured_are_refused_by_name(string field, string value, string expected)
    {
        using var scratch = new ScratchFolder();
        BnbCases.CopyQuantized("llama_nf4_double_quant", scratch.Path, editConfig: c => c["quantization_config"]![field] = JsonNode.Parse(value));
        var e = Assert.Throws<InvalidDataException>(() => ModelFactory.Load(scratch.Path));
        Assert.Contains("config.json", e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void A_tied_head_cannot_be_quantized()
    {
        var config = new BitsAndBytesConfig { LoadIn4Bit = true, QuantType = FourBitType.Nf4, SkipModules = [] };
        var e = Assert.Throws<InvalidOperationException>(() => ModelFactory.Load(Path.Combine(BnbCases.Model("gpt2_nf4_double_quant"), "base"), ScalarType.Float32, null, config));
        Assert.Contains("lm_head", e.Message);
    }
}
