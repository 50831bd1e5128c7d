using PeftHost.Engine.Export;
using PeftHost.Formats.Gguf;
using PeftHost.Tests.Support;
using Xunit;

namespace PeftHost.Tests.Llama;

/// <summary>
/// `export --format gguf-lora` writes what llama.cpp's convert_lora_to_gguf.py writes (keys, names,
/// shapes), its pairs reproduce the merged weights of the base export (Q/K permutation and scaling
/// included: merged GGUF minus base GGUF = alpha / r x B A per weight), and what it cannot express is refused.
/// </summary>
public sealed class GgufLoraExportTests : IDisposable
{
    private readonly ScratchFolder _scratch = new();

    public void Dispose() => _scratch.Dispose();

    private static string Case => LlamaFixtures.CaseFolder("lora_rslora_llama");

    [Fact]
    public void The_file_has_llama_cpp_adapter_keys_names_and_shapes()
    {
        string path = Path.Combine(_scratch.Path, "a.gguf");
        (int code, string stdout, string stderr) = Cli.Run("export", "--model", Path.Combine(Case, "base"), "--adapter", Path.Combine(Case, "adapter"), "--format", "gguf-lora",
            "--out", path, "--plugins", PluginDirs.Installed);
        Assert.True(code == 0, stdout + stderr);
        Assert.Contains("GGUF-LoRA for llama, 8 weights, rank 4, alpha 8, f32", stdout);
        using GgufFile f = GgufFile.Open(path);
        Assert.Equal("llama", f.GetMetadata("general.architecture").AsString());
        Assert.Equal("adapter", f.GetMetadata("general.type").AsString());
        Assert.Equal("lora", f.GetMetadata("adapter.type").AsString());
        Assert.Equal(8.0, f.GetMetadata("adapter.lora.alpha").AsDouble());
        Assert.Equal(16, f.Tensors.Count);
        // hidden 32, 4 heads, 2 kv heads of 8: llama.cpp needs lora_a [in, r] and lora_b [r, out] in GGML order.
        Assert.Equal([32UL, 4UL], f.GetTensor("blk.0.attn_q.weight.lora_a").Dimensions);
        Assert.Equal([4UL, 32UL], f.GetTensor("blk.0.attn_q.weight.lora_b").Dimensions);
        Assert.Equal([4UL, 16UL], f.GetTensor("blk.1.attn_k.weight.lora_b").Dimensions);
        Assert.Equal([32UL, 4UL], f.GetTensor("blk.1.attn_output.weight.lora_a").Dimensions);
        Assert.All(f.Tensors, t => Assert.Equal(GgmlType.F32, t.Type));
    }

    [Fact]
    public void Pairs_reproduce_the_merged_export_of_every_weight()
    {
        string model = Path.Combine(Case, "base");
        using GgufFile base0 = Open(LlamaGgufExporter.Build(model, [], PluginDirs.Installed, GgmlType.F32, out _), "base.gguf");
        using GgufFile merged = Open(LlamaGgufExporter.Build(model, [new("a", Path.Combine(Case, "adapter"))], PluginDirs.Installed, GgmlType.F32, out _), "merged.gguf");
        using GgufFile lora = Open(GgufLoraExporter.Build(model, Path.Combine(Case, "adapter"), PluginDirs.Installed, GgmlType.F32, out _), "lora.gguf");
        double alpha = lora.GetMetadata("adapter.lora.alpha").AsDouble();
        int checkedWeights = 0;
        foreach (GgufTensorInfo a in lora.Tensors.Where(t => t.Name.EndsWith(".lora_a", StringComparison.Ordinal)))
        {
            string weight = a.Name[..^7];
            GgufTensorInfo b = lora.GetTensor(weight + ".lora_b");
            int r = (int)a.Rows, cols = (int)a.Columns, rows = (int)b.Rows;
            float[] av = lora.ReadTensorFloats(a.Name), bv = lora.ReadTensorFloats(b.Name);
            float[] w0 = base0.ReadTensorFloats(weight), w1 = merged.ReadTensorFloats(weight);
            double worst = 0;
            for (int i = 0; i < rows; i++)
                for (int j = 0; j < cols; j++)
                {
                    double delta = 0;
                    for (int k = 0; k < r; k++) delta += bv[i * r + k] * av[k * cols + j];
                    worst = Math.Max(worst, Math.Abs(w1[i * cols + j] - w0[i * cols + j] - alpha / r * delta));
                }
            Assert.True(worst < 1e-5, $"{weight}: merged - base differs from alpha/r B A by {worst}");
            checkedWeights++;
        }
        Assert.Equal(8, checkedWeights);
    }

    [Theory]
    [InlineData(GgufQkvLayout.Separate, 8)]
    [InlineData(GgufQkvLayout.Fused, 4)]   // per layer: Q, K, V as one attn_qkv pair of rank 12, and attn_output
    public void Q8_0_pairs_padded_where_smaller_reproduce_the_merged_export_within_q8_0s_error(GgufQkvLayout qkv, int weights)
    {
        string model = Path.Combine(Case, "base");
        using GgufFile base0 = Open(LlamaGgufExporter.Build(model, [], PluginDirs.Installed, GgmlType.F32, out _, qkv: qkv), "base.gguf");
        using GgufFile merged = Open(LlamaGgufExporter.Build(model, [new("a", Path.Combine(Case, "adapter"))], PluginDirs.Installed, GgmlType.F32, out _, qkv: qkv), "merged.gguf");
        using GgufFile lora = Open(GgufLoraExporter.Build(model, Path.Combine(Case, "adapter"), PluginDirs.Installed, GgmlType.Q8_0, out _, qkv, padRanks: true), "lora.gguf");
        double alpha = lora.GetMetadata("adapter.lora.alpha").AsDouble();
        int checkedWeights = 0, paddedWeights = 0;
        foreach (GgufTensorInfo a in lora.Tensors.Where(t => t.Name.EndsWith(".lora_a", StringComparison.Ordinal)))
        {
            string weight = a.Name[..^7];
            GgufTensorInfo b = lora.GetTensor(weight + ".lora_b");
            int r = (int)a.Rows, cols = (int)a.Columns, rows = (int)b.Rows;
            int used = weight.EndsWith("attn_qkv.weight", StringComparison.Ordinal) ? 12 : 4;
            // A's rows (32 long) are q8_0. The fused pair of rank 12 is padded to one block of 32, which makes it smaller
            // (B [64, 32] q8_0 instead of [64, 12] f32); a rank 4 pair is not (32 q8_0 columns take more than 4 f32 ones).
            Assert.Equal(GgmlType.Q8_0, a.Type);
            Assert.Equal(used == 12 ? (32, GgmlType.Q8_0) : (4, GgmlType.F32), (r, b.Type));
            if (r != used) paddedWeights++;
            float[] av = lora.ReadTensorFloats(a.Name), bv = lora.ReadTensorFloats(b.Name);
            Assert.All(av.Skip(used * cols), v => Assert.Equal(0f, v));
            for (int i = 0; i < rows; i++) Assert.All(bv.Skip(i * r + used).Take(r - used), v => Assert.Equal(0f, v));
            float[] w0 = base0.ReadTensorFloats(weight), w1 = merged.ReadTensorFloats(weight);
            double worst = 0, largest = 0;
            for (int i = 0; i < rows; i++)
                for (int j = 0; j < cols; j++)
                {
                    double delta = 0;
                    for (int k = 0; k < r; k++) delta += bv[i * r + k] * av[k * cols + j];
                    double exact = w1[i * cols + j] - w0[i * cols + j];
                    largest = Math.Max(largest, Math.Abs(exact));
                    worst = Math.Max(worst, Math.Abs(exact - alpha / r * delta));
                }
            // q8_0 rounds each factor to 1/254 of its block's largest value; the product stays within 2 % of the update.
            Assert.True(worst < 0.02 * largest, $"{weight}: merged - base differs from alpha/r B A by {worst} (largest update {largest})");
            checkedWeights++;
        }
        Assert.Equal(weights, checkedWeights);
        Assert.Equal(qkv == GgufQkvLayout.Fused ? 2 : 0, paddedWeights);
    }

    [Fact]
    public void What_gguf_lora_cannot_express_is_refused_with_the_reason()
    {
        (int code, _, string stderr) = Cli.Run("export", "--model", Path.Combine(LlamaFixtures.CaseFolder("lora_dora_llama"), "base"),
            "--adapter", Path.Combine(LlamaFixtures.CaseFolder("lora_dora_llama"), "adapter"), "--format", "gguf-lora", "--out", Path.Combine(_scratch.Path, "d.gguf"));
        Assert.Equal(2, code);
        Assert.Contains("DoRA", stderr);
        Assert.Contains("magnitude", stderr);
        Assert.False(File.Exists(Path.Combine(_scratch.Path, "d.gguf")));

        string saved = LlamaFixtures.EditedAdapter(Path.Combine(Case, "adapter"), Path.Combine(_scratch.Path, "mts"), j => j["modules_to_save"] = new System.Text.Json.Nodes.JsonArray("lm_head"));
        var e = Assert.Throws<NotSupportedException>(() => GgufLoraExporter.Build(Path.Combine(Case, "base"), saved, PluginDirs.Installed, GgmlType.F32, out _));
        Assert.Contains("modules_to_save (lm_head)", e.Message);
        Assert.Contains("full trained copies", e.Message);

        Assert.Contains("peft_type IA3 is not LoRA", GgufLoraExporter.Refusal(Path.Combine(LlamaFixtures.CaseFolder("ia3_llama"), "base"), Path.Combine(LlamaFixtures.CaseFolder("ia3_llama"), "adapter"), PluginDirs.Installed));
        (code, _, stderr) = Cli.Run("export", "--model", Path.Combine(Case, "base"), "--adapter", Path.Combine(Case, "adapter"), "--format", "gguf-lora", "--quant", "q4_0",
            "--out", Path.Combine(_scratch.Path, "q.gguf"));
        Assert.Equal(2, code);
        Assert.Contains("f32, f16 or q8_0", stderr);
    }

    private GgufFile Open(GgufWriter writer, string name)
    {
        string path = Path.Combine(_scratch.Path, name);
        writer.Write(path);
        return GgufFile.Open(path);
    }
}
