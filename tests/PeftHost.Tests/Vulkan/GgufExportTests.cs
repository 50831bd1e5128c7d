using PeftHost.Engine.Export;
using PeftHost.Formats.Gguf;
using PeftHost.Models;
using PeftHost.Models.Llama;
using PeftHost.Tests.Support;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace PeftHost.Tests.Vulkan;

/// <summary>The GGUF export read back with our reader: llama.cpp's tensor names, shapes, types and metadata.</summary>
public sealed class GgufExportTests
{
    [Theory]
    [InlineData("f32", GgmlType.F32, 0u)]
    [InlineData("f16", GgmlType.F16, 1u)]
    [InlineData("q8_0", GgmlType.Q8_0, 7u)]
    [InlineData("q4_0", GgmlType.Q4_0, 2u)]
    public void Export_has_llama_cpp_names_shapes_types_and_metadata(string quant, GgmlType type, uint fileType)
    {
        string path = Path.Combine(Path.GetTempPath(), $"pefthost-export-{Guid.NewGuid():N}.gguf");
        try
        {
            (int code, string stdout, string stderr) = Cli.Run("export", "--model", Conformance.Case("base_llama"), "--format", "gguf", "--quant", quant, "--out", path,
                "--plugins", PluginDirs.Installed);
            Assert.True(code == 0, stdout + stderr);
            using GgufFile f = GgufFile.Open(path);
            Assert.Equal("llama", f.GetMetadata("general.architecture").AsString());
            Assert.Equal("base_llama", f.GetMetadata("general.name").AsString());
            Assert.Equal(64UL, f.GetMetadata("llama.embedding_length").AsUInt64());
            Assert.Equal(2UL, f.GetMetadata("llama.block_count").AsUInt64());
            Assert.Equal(128UL, f.GetMetadata("llama.feed_forward_length").AsUInt64());
            Assert.Equal(128UL, f.GetMetadata("llama.context_length").AsUInt64());
            Assert.Equal(4UL, f.GetMetadata("llama.attention.head_count").AsUInt64());
            Assert.Equal(2UL, f.GetMetadata("llama.attention.head_count_kv").AsUInt64());
            Assert.Equal(256UL, f.GetMetadata("llama.vocab_size").AsUInt64());
            Assert.Equal(10000.0, f.GetMetadata("llama.rope.freq_base").AsDouble(), 3);
            Assert.Equal(1e-6, f.GetMetadata("llama.attention.layer_norm_rms_epsilon").AsDouble(), 9);
            Assert.Equal(fileType, (uint)f.GetMetadata("general.file_type").AsUInt64());
            Assert.Equal(1UL, f.GetMetadata("tokenizer.ggml.bos_token_id").AsUInt64());
            Assert.Equal(2UL, f.GetMetadata("tokenizer.ggml.eos_token_id").AsUInt64());

            var expected = new List<(string, ulong[], GgmlType)> { ("token_embd.weight", [64, 256], type) };
            for (int i = 0; i < 2; i++)
            {
                expected.Add(($"blk.{i}.attn_norm.weight", [64], GgmlType.F32));
                expected.Add(($"blk.{i}.attn_q.weight", [64, 64], type));
                expected.Add(($"blk.{i}.attn_k.weight", [64, 32], type));
                expected.Add(($"blk.{i}.attn_v.weight", [64, 32], type));
                expected.Add(($"blk.{i}.attn_output.weight", [64, 64], type));
                expected.Add(($"blk.{i}.ffn_norm.weight", [64], GgmlType.F32));
                expected.Add(($"blk.{i}.ffn_gate.weight", [64, 128], type));
                expected.Add(($"blk.{i}.ffn_up.weight", [64, 128], type));
                expected.Add(($"blk.{i}.ffn_down.weight", [128, 64], type));
            }
            expected.Add(("output_norm.weight", [64], GgmlType.F32));
            expected.Add(("output.weight", [64, 256], type));
            Assert.Equal(expected.Select(e => e.Item1).Order(), f.Tensors.Select(t => t.Name).Order());
            foreach ((string name, ulong[] dims, GgmlType t) in expected)
            {
                GgufTensorInfo info = f.GetTensor(name);
                Assert.Equal(dims, info.Dimensions);
                Assert.Equal(t, info.Type);
            }
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Q_and_k_rows_are_permuted_to_interleaved_pairs_and_the_rest_is_verbatim()
    {
        string path = Path.Combine(Path.GetTempPath(), $"pefthost-export-{Guid.NewGuid():N}.gguf");
        try
        {
            LlamaGgufExporter.Export(Conformance.Case("base_llama"), [], PluginDirs.Installed, GgmlType.F32, path);
            using GgufFile f = GgufFile.Open(path);
            (_, nn.Module m) = ModelFactory.Load(Conformance.Case("base_llama"));
            using var model = (LlamaForCausalLM)m;
            var state = model.state_dict();
            float[] hfK = state["model.layers.1.self_attn.k_proj.weight"].data<float>().ToArray();
            float[] ggK = f.ReadTensorFloats("blk.1.attn_k.weight");
            const int d = 16, cols = 64;
            for (int head = 0; head < 2; head++)
                for (int i = 0; i < d / 2; i++)
                    for (int c = 0; c < cols; c++)
                    {
                        // GGUF row (2i, 2i+1) of a head = HF rows (i, i + d/2).
                        Assert.Equal(hfK[(head * d + i) * cols + c], ggK[(head * d + 2 * i) * cols + c]);
                        Assert.Equal(hfK[(head * d + i + d / 2) * cols + c], ggK[(head * d + 2 * i + 1) * cols + c]);
                    }
            Assert.Equal(state["model.layers.0.self_attn.v_proj.weight"].data<float>().ToArray(), f.ReadTensorFloats("blk.0.attn_v.weight"));
            Assert.Equal(state["lm_head.weight"].data<float>().ToArray(), f.ReadTensorFloats("output.weight"));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Unsupported_architectures_are_a_clear_error()
    {
        string path = Path.Combine(Path.GetTempPath(), $"pefthost-export-{Guid.NewGuid():N}.gguf");
        (int code, _, string stderr) = Cli.Run("export", "--model", Conformance.Case("base_gpt2"), "--quant", "f16", "--out", path);
        Assert.Equal(2, code);
        Assert.Contains("Llama family", stderr);
        Assert.False(File.Exists(path));
    }
}
