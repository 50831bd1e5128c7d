using System.Text;
using System.Text.Json.Nodes;
using PeftHost.Formats.BitsAndBytes;
using PeftHost.Formats.Tests.Support;
using Xunit;

namespace PeftHost.Formats.Tests.BitsAndBytes;

/// <summary>The quant_state JSON, Python's float repr and transformers' BitsAndBytesConfig fields.</summary>
public sealed class QuantStateAndConfigTests
{
    [Theory]
    [InlineData(0.06805437058210373, "0.06805437058210373")]
    [InlineData(2.1017942428588867, "2.1017942428588867")]
    [InlineData(1e-05, "1e-05")]
    [InlineData(1.5e-07, "1.5e-07")]
    [InlineData(0.0001, "0.0001")]
    [InlineData(6.0, "6.0")]
    [InlineData(123.25, "123.25")]
    [InlineData(1e16, "1e+16")]
    [InlineData(1e15, "1000000000000000.0")]
    [InlineData(-0.5, "-0.5")]
    [InlineData(0.0, "0.0")]
    public void Floats_are_written_as_python_repr(double value, string expected) =>
        Assert.Equal(expected, PythonFloat.Repr(value));

    [Fact]
    public void Quant_state_json_parses_and_writes_back_byte_for_byte()
    {
        string json = "{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"bfloat16\", \"shape\": [4096, 11008], "
                    + "\"nested_blocksize\": 256, \"nested_dtype\": \"float32\", \"nested_offset\": 0.021363526582717896}";
        FourBitQuantState s = FourBitQuantState.Parse(Encoding.UTF8.GetBytes(json), "w");
        Assert.Equal(FourBitType.Nf4, s.QuantType);
        Assert.Equal([4096L, 11008L], s.Shape);
        Assert.True(s.Nested);
        Assert.Equal(json, Encoding.UTF8.GetString(s.ToJsonBytes()));
    }

    [Theory]
    [InlineData("{\"quant_type\": \"int4\", \"blocksize\": 64, \"dtype\": \"float32\", \"shape\": [2, 2]}", "unknown 4-bit quant_type 'int4'")]
    [InlineData("{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"float32\", \"shape\": [2, 2], \"extra\": 1}", "unknown quant state field 'extra'")]
    [InlineData("{\"quant_type\": \"nf4\", \"blocksize\": 63, \"dtype\": \"float32\", \"shape\": [2, 2]}", "blocksize 63")]
    [InlineData("{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"int8\", \"shape\": [2, 2]}", "dtype 'int8'")]
    [InlineData("{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"float32\"}", "no 'shape'")]
    [InlineData("not json", "is not the JSON")]
    public void A_bad_quant_state_is_an_error_naming_the_tensor(string json, string expected)
    {
        var e = Assert.Throws<InvalidDataException>(() => FourBitQuantState.Parse(Encoding.UTF8.GetBytes(json), "model.q_proj.weight.quant_state.bitsandbytes__nf4"));
        Assert.Contains("model.q_proj.weight.quant_state.bitsandbytes__nf4", e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Theory]
    [InlineData("llama_nf4_double_quant", true, FourBitType.Nf4, true)]
    [InlineData("llama_fp4", true, FourBitType.Fp4, false)]
    [InlineData("llama_int8", false, FourBitType.Fp4, false)]
    public void Transformers_configs_parse_and_write_back_the_same_object(string name, bool fourBit, FourBitType type, bool dq)
    {
        string path = Path.Combine(BnbFixtures.Root, "models", name, "quantized", "config.json");
        JsonObject q = JsonNode.Parse(File.ReadAllText(path))!["quantization_config"]!.AsObject();
        BitsAndBytesConfig c = BitsAndBytesConfig.Parse(q, path);
        Assert.Equal(fourBit, c.LoadIn4Bit);
        Assert.Equal(!fourBit, c.LoadIn8Bit);
        Assert.Equal(type, c.QuantType);
        Assert.Equal(dq, c.UseDoubleQuant);
        Assert.Null(c.SkipModules);
        Assert.Equal(6.0, c.Int8Threshold);
        Assert.True(JsonNode.DeepEquals(q, c.ToJson()), $"{q.ToJsonString()}\n{c.ToJson().ToJsonString()}");
        Assert.Contains("\"llm_int8_threshold\":6.0", c.ToJson().ToJsonString());
    }

    [Theory]
    [InlineData("{\"load_in_4bit\": true, \"bnb_4bit_quant_typ\": \"nf4\"}", "'bnb_4bit_quant_typ'")]
    [InlineData("{\"load_in_4bit\": true, \"load_in_8bit\": true}", "both true")]
    [InlineData("{\"load_in_4bit\": false}", "neither")]
    [InlineData("{\"load_in_4bit\": true, \"bnb_4bit_quant_type\": \"int4\"}", "'int4'")]
    [InlineData("{\"load_in_4bit\": true, \"bnb_4bit_compute_dtype\": \"float64\"}", "'float64'")]
    [InlineData("{\"load_in_4bit\": true, \"bnb_4bit_quant_storage\": \"bfloat16\"}", "bnb_4bit_quant_storage")]
    [InlineData("{\"load_in_8bit\": true, \"llm_int8_enable_fp32_cpu_offload\": true}", "llm_int8_enable_fp32_cpu_offload")]
    [InlineData("{\"load_in_8bit\": true, \"llm_int8_has_fp16_weight\": true}", "llm_int8_has_fp16_weight")]
    [InlineData("{\"load_in_4bit\": \"yes\"}", "load_in_4bit must be true or false")]
    [InlineData("{\"quant_method\": \"gptq\", \"load_in_4bit\": true}", "'gptq'")]
    [InlineData("{\"load_in_4bit\": true, \"llm_int8_skip_modules\": \"lm_head\"}", "llm_int8_skip_modules")]
    public void Fields_not_honoured_are_refused_by_name(string json, string expected)
    {
        var e = Assert.Throws<InvalidDataException>(() => BitsAndBytesConfig.Parse(JsonNode.Parse(json)!.AsObject(), "cfg.json"));
        Assert.Contains("cfg.json", e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void Defaults_are_transformers_defaults()
    {
        BitsAndBytesConfig c = BitsAndBytesConfig.Parse(JsonNode.Parse("{\"load_in_4bit\": true}")!.AsObject(), "x");
        Assert.Equal(FourBitType.Fp4, c.QuantType);
        Assert.False(c.UseDoubleQuant);
        Assert.Equal("float32", c.ComputeDType);
    }

    [Theory]
    [InlineData("lm_head", new[] { "lm_head" }, true)]
    [InlineData("model.layers.0.mlp.gate_proj", new[] { "mlp" }, true)]
    [InlineData("model.layers.0.self_attn.q_proj", new[] { "mlp" }, false)]
    [InlineData("model.layers.0.self_attn.q_proj", new[] { "q_proj" }, true)]
    [InlineData("model.layers.0.self_attn.q_proj", new[] { "model.layers.0.self_attn.q_proj" }, true)]
    [InlineData("model.layers.10.self_attn.q_proj", new[] { "layers.1" }, false)]
    [InlineData("model.layers.1.self_attn.q_proj", new[] { "layers.1" }, true)]
    public void Skip_modules_follow_transformers_rule(string path, string[] skip, bool skipped) =>
        Assert.Equal(skipped, BitsAndBytesConfig.IsSkipped(path, skip));
}
