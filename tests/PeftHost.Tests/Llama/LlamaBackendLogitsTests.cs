using PeftHost.Engine.Export;
using PeftHost.Engine.Inference;
using PeftHost.Engine.Inference.Backends;
using PeftHost.Formats.Gguf;
using PeftHost.Llama;
using PeftHost.Models;
using PeftHost.Tests.Support;
using Xunit;

namespace PeftHost.Tests.Llama;

/// <summary>
/// llama.cpp (through LLamaSharp) on our exported GGUF, f32: logits equal torch's and PEFT's own
/// reference logits (written by PEFT 0.13.2) within 1e-3, with LoRA applied unmerged as GGUF-LoRA,
/// DoRA and IA3 merged, and prompt learning refused.
/// </summary>
public sealed class LlamaBackendLogitsTests : IDisposable
{
    private const double Tolerance = 1e-3;
    private readonly ScratchFolder _scratch = new();

    private string Cache => Path.Combine(_scratch.Path, "cache");

    public void Dispose() => _scratch.Dispose();

    [Fact]
    public void F32_logits_equal_torch_on_a_model_with_a_tokenizer()
    {
        string model = Path.Combine(_scratch.Path, "tiny");
        ModelPresets.Write("llama", "tiny", model, seed: 3);
        int[] ids = [5, 77, 200, 31, 9, 143, 250, 12];
        using IInferenceBackend torch = InferenceBackends.Open(LlamaFixtures.Options(InferenceBackendKind.Torch, model, Cache));
        using IInferenceBackend llama = InferenceBackends.Open(LlamaFixtures.Options(InferenceBackendKind.Llama, model, Cache));
        Assert.Equal(InferenceBackendKind.Llama, llama.Kind);
        Assert.Equal(torch.VocabSize, llama.VocabSize);
        double diff = LlamaFixtures.MaxAbsDiff(torch.Logits(ids), llama.Logits(ids));
        Assert.True(diff < Tolerance, $"max |llama - torch| = {diff}");
    }

    [Theory]
    [InlineData("lora_rslora_llama")]      // rsLoRA (alpha / sqrt(r) folded into lora_b) on q, k, v, o: the Q/K permutation matters
    [InlineData("conformance/lora_qv")]    // plain LoRA r 8 on q, v
    public void Lora_unmerged_equals_peft_and_torch(string name)
    {
        bool conformance = name.StartsWith("conformance/", StringComparison.Ordinal);
        string c = conformance ? Conformance.Case(name["conformance/".Length..]) : LlamaFixtures.CaseFolder(name);
        string baseFolder = conformance ? Conformance.Case("base_llama") : Path.Combine(c, "base");
        var adapter = new AdapterSpec("a", Path.Combine(c, "adapter"));
        int[][] rows = LlamaFixtures.Rows(Path.Combine(c, "inputs.json"));
        using IInferenceBackend llama = InferenceBackends.Open(LlamaFixtures.Options(InferenceBackendKind.Llama, baseFolder, Cache, GgmlType.F32, adapter));
        Assert.Equal([new AdapterScale("a", 1.0)], llama.Adapters);
        Assert.Empty(llama.MergedAdapters);
        Assert.Equal(GgmlType.F32, ((LlamaBackend)llama).Files.LoraFactors);
        float[] peft = LlamaFixtures.Reference(Path.Combine(c, "logits_adapter.safetensors"));
        double diff = LlamaFixtures.MaxAbsDiff(peft, LlamaFixtures.AllLogits(llama, rows));
        Assert.True(diff < Tolerance, $"{name}: max |llama - peft| = {diff}");

        using IInferenceBackend torch = InferenceBackends.Open(LlamaFixtures.Options(InferenceBackendKind.Torch, baseFolder, Cache, GgmlType.F32, adapter));
        double toTorch = LlamaFixtures.MaxAbsDiff(LlamaFixtures.AllLogits(torch, rows), LlamaFixtures.AllLogits(llama, rows));
        Assert.True(toTorch < Tolerance, $"{name}: max |llama - torch| = {toTorch}");
    }

    [Fact]
    public void The_cache_fuses_q_k_v_and_a_given_separate_gguf_keeps_separate_pairs()
    {
        string c = LlamaFixtures.CaseFolder("lora_rslora_llama");   // LoRA r 4 on q, k, v, o of both layers
        string baseFolder = Path.Combine(c, "base");
        var adapter = new AdapterSpec("a", Path.Combine(c, "adapter"));
        int[][] rows = LlamaFixtures.Rows(Path.Combine(c, "inputs.json"));
        float[] peft = LlamaFixtures.Reference(Path.Combine(c, "logits_adapter.safetensors"));
        int hidden = PeftHost.Models.Config.ModelConfigReader.Read(baseFolder).HiddenSize;

        // The backend's own cache: one attn_qkv per layer, and the adapter's Q, K, V pairs as one pair of rank 3 x 4.
        using (var fused = (LlamaBackend)InferenceBackends.Open(LlamaFixtures.Options(InferenceBackendKind.Llama, baseFolder, Cache, GgmlType.F32, adapter)))
        {
            using (GgufFile b = GgufFile.Open(fused.Files.BaseGguf))
            {
                Assert.Contains(b.Tensors, t => t.Name == "blk.0.attn_qkv.weight");
                Assert.DoesNotContain(b.Tensors, t => t.Name.Contains("attn_q.", StringComparison.Ordinal));
            }
            using (GgufFile l = GgufFile.Open(Assert.Single(fused.Files.Unmerged).LoraGguf))
            {
                Assert.Equal(new ulong[] { (ulong)hidden, 12 }, l.GetTensor("blk.1.attn_qkv.weight.lora_a").Dimensions);
                Assert.Equal(12UL, l.GetTensor("blk.1.attn_qkv.weight.lora_b").Dimensions[0]);
                Assert.Contains(l.Tensors, t => t.Name == "blk.1.attn_output.weight.lora_a");
                Assert.DoesNotContain(l.Tensors, t => t.Name.Contains("attn_k.", StringComparison.Ordinal));
            }
            double diff = LlamaFixtures.MaxAbsDiff(peft, LlamaFixtures.AllLogits(fused, rows));
            Assert.True(diff < Tolerance, $"fused: max |llama - peft| = {diff}");
        }

        // A base GGUF given as a file, written as pefthost export writes it (attn_q|k|v): the pairs follow its layout.
        string given = Path.Combine(_scratch.Path, "given.gguf");
        PeftHost.Engine.Export.LlamaGgufExporter.Export(baseFolder, [], PluginDirs.Installed, GgmlType.F32, given);
        using var separate = (LlamaBackend)InferenceBackends.Open(LlamaFixtures.Options(InferenceBackendKind.Llama, baseFolder, Cache, GgmlType.F32, adapter) with { GgufFile = given });
        using (GgufFile l = GgufFile.Open(Assert.Single(separate.Files.Unmerged).LoraGguf))
        {
            Assert.Equal(new ulong[] { (ulong)hidden, 4 }, l.GetTensor("blk.0.attn_k.weight.lora_a").Dimensions);
            Assert.DoesNotContain(l.Tensors, t => t.Name.Contains("attn_qkv", StringComparison.Ordinal));
        }
        double separateDiff = LlamaFixtures.MaxAbsDiff(peft, LlamaFixtures.AllLogits(separate, rows));
        Assert.True(separateDiff < Tolerance, $"separate: max |llama - peft| = {separateDiff}");
    }

    [Fact]
    public void A_gguf_lora_laid_out_for_another_base_is_refused_with_the_tensor_name()
    {
        string c = LlamaFixtures.CaseFolder("lora_rslora_llama");
        string baseFolder = Path.Combine(c, "base");
        var adapter = new AdapterSpec("a", Path.Combine(c, "adapter"));
        string fusedBase;
        using (var fused = (LlamaBackend)InferenceBackends.Open(LlamaFixtures.Options(InferenceBackendKind.Llama, baseFolder, Cache, GgmlType.F32)))
            fusedBase = fused.Files.BaseGguf;
        string separateLora = Path.Combine(_scratch.Path, "separate-lora.gguf");
        PeftHost.Engine.Export.GgufLoraExporter.Export(baseFolder, adapter.Folder, PluginDirs.Installed, GgmlType.F32, separateLora);

        using var model = PeftHost.Llama.LlamaCppModel.Open(fusedBase);
        var e = Assert.Throws<InvalidDataException>(() => model.LoadAdapter(separateLora, "a"));
        Assert.Contains(separateLora, e.Message);
        Assert.Matches(@"'blk\.\d+\.attn_[qkv]\.weight', which the base .* does not have", e.Message);
    }

    [Fact]
    public void A_gguf_lora_pair_of_other_dimensions_or_without_its_partner_is_refused_before_llama_cpp_sees_it()
    {
        string baseFolder = Path.Combine(LlamaFixtures.CaseFolder("lora_rslora_llama"), "base");
        string baseGguf;
        using (var b = (LlamaBackend)InferenceBackends.Open(LlamaFixtures.Options(InferenceBackendKind.Llama, baseFolder, Cache, GgmlType.F32)))
            baseGguf = b.Files.BaseGguf;
        ulong hidden = (ulong)PeftHost.Models.Config.ModelConfigReader.Read(baseFolder).HiddenSize;
        using var model = PeftHost.Llama.LlamaCppModel.Open(baseGguf);

        string Lora(string file, params (string Name, ulong[] Dims)[] tensors)
        {
            var w = new GgufWriter();
            w.SetMetadata("general.architecture", GgufValue.FromString("llama"));
            w.SetMetadata("general.type", GgufValue.FromString("adapter"));
            w.SetMetadata("adapter.type", GgufValue.FromString("lora"));
            w.SetMetadata("adapter.lora.alpha", GgufValue.FromFloat32(2));
            foreach ((string name, ulong[] dims) in tensors) w.AddTensor(name, dims, GgmlType.F32, new float[(int)(dims[0] * dims[1])]);
            string path = Path.Combine(_scratch.Path, file);
            w.Write(path);
            return path;
        }

        string wide = Lora("wide.gguf", ("blk.0.attn_output.weight.lora_a", [hidden + 1, 2]), ("blk.0.attn_output.weight.lora_b", [2, hidden]));
        var e = Assert.Throws<InvalidDataException>(() => model.LoadAdapter(wide, "wide"));
        Assert.Contains($"'blk.0.attn_output.weight' is [{hidden}, {hidden}] in the base, but its pair is lora_a [{hidden + 1}, 2]", e.Message);

        string half = Lora("half.gguf", ("blk.0.attn_output.weight.lora_b", [2, hidden]));
        e = Assert.Throws<InvalidDataException>(() => model.LoadAdapter(half, "half"));
        Assert.Contains("'blk.0.attn_output.weight.lora_b' has no 'blk.0.attn_output.weight.lora_a'", e.Message);
    }

    [Fact]
    public void Adapters_switch_per_request_with_their_scales_without_reloading_the_base()
    {
        string c = LlamaFixtures.CaseFolder("lora_rslora_llama");
        string adapter = Path.Combine(c, "adapter");
        // The same pairs with lora_alpha halved: PEFT's scaling of the module halves, which the torch plugin computes on its own.
        string half = LlamaFixtures.EditedAdapter(adapter, Path.Combine(_scratch.Path, "half"), j => j["lora_alpha"] = j["lora_alpha"]!.GetValue<double>() / 2);
        int[][] rows = LlamaFixtures.Rows(Path.Combine(c, "inputs.json"));
        using IInferenceBackend llama = InferenceBackends.Open(LlamaFixtures.Options(InferenceBackendKind.Llama, Path.Combine(c, "base"), Cache, GgmlType.F32,
            new AdapterSpec("a", adapter)));
        float[] base1 = LlamaFixtures.AllLogits(llama, rows, []);
        float[] full = LlamaFixtures.AllLogits(llama, rows, [new AdapterScale("a", 1.0)]);
        float[] halfScale = LlamaFixtures.AllLogits(llama, rows, [new AdapterScale("a", 0.5)]);
        float[] base2 = LlamaFixtures.AllLogits(llama, rows, [new AdapterScale("a", 0.0)]);

        Assert.True(LlamaFixtures.MaxAbsDiff(base1, LlamaFixtures.Reference(Path.Combine(c, "logits_base.safetensors"))) < Tolerance);
        Assert.True(LlamaFixtures.MaxAbsDiff(full, LlamaFixtures.Reference(Path.Combine(c, "logits_adapter.safetensors"))) < Tolerance);
        Assert.True(LlamaFixtures.MaxAbsDiff(base1, base2) < 1e-6, "scale 0 is the base");
        using IInferenceBackend torchHalf = InferenceBackends.Open(LlamaFixtures.Options(InferenceBackendKind.Torch, Path.Combine(c, "base"), Cache, GgmlType.F32,
            new AdapterSpec("h", half)));
        double diff = LlamaFixtures.MaxAbsDiff(LlamaFixtures.AllLogits(torchHalf, rows), halfScale);
        Assert.True(diff < Tolerance, $"scale 0.5 vs PEFT scaling halved: {diff}");
        Assert.Throws<KeyNotFoundException>(() => llama.Logits(rows[0], [new AdapterScale("nope")]));
    }

    [Fact]
    public void An_alpha_pattern_is_folded_into_lora_b()
    {
        string c = LlamaFixtures.CaseFolder("lora_rslora_llama");
        string patterned = LlamaFixtures.EditedAdapter(Path.Combine(c, "adapter"), Path.Combine(_scratch.Path, "pattern"), j =>
        {
            j["use_rslora"] = false;
            j["alpha_pattern"] = new System.Text.Json.Nodes.JsonObject { ["q_proj"] = 32, ["layers.1.self_attn.v_proj"] = 2 };
        });
        var adapter = new AdapterSpec("p", patterned);
        int[][] rows = LlamaFixtures.Rows(Path.Combine(c, "inputs.json"));
        using IInferenceBackend torch = InferenceBackends.Open(LlamaFixtures.Options(InferenceBackendKind.Torch, Path.Combine(c, "base"), Cache, GgmlType.F32, adapter));
        using IInferenceBackend llama = InferenceBackends.Open(LlamaFixtures.Options(InferenceBackendKind.Llama, Path.Combine(c, "base"), Cache, GgmlType.F32, adapter));
        float[] t = LlamaFixtures.AllLogits(torch, rows);
        Assert.True(LlamaFixtures.MaxAbsDiff(t, LlamaFixtures.AllLogits(llama, rows)) < Tolerance);
        // The pattern matters: without it the logits differ.
        using IInferenceBackend plain = InferenceBackends.Open(LlamaFixtures.Options(InferenceBackendKind.Torch, Path.Combine(c, "base"), Cache, GgmlType.F32,
            new AdapterSpec("q", LlamaFixtures.EditedAdapter(Path.Combine(c, "adapter"), Path.Combine(_scratch.Path, "plain"), j => j["use_rslora"] = false))));
        Assert.True(LlamaFixtures.MaxAbsDiff(t, LlamaFixtures.AllLogits(plain, rows)) > 1e-3);
    }

    [Theory]
    [InlineData("lora_dora_llama", "DoRA")]
    [InlineData("ia3_llama", "peft_type IA3 is not LoRA")]
    public void Dora_and_ia3_are_merged_into_a_cached_base_and_say_why(string name, string reason)
    {
        string c = LlamaFixtures.CaseFolder(name);
        int[][] rows = LlamaFixtures.Rows(Path.Combine(c, "inputs.json"));
        using IInferenceBackend llama = InferenceBackends.Open(LlamaFixtures.Options(InferenceBackendKind.Llama, Path.Combine(c, "base"), Cache, GgmlType.F32,
            new AdapterSpec("m", Path.Combine(c, "adapter"))));
        MergedAdapter merged = Assert.Single(llama.MergedAdapters);
        Assert.Equal("m", merged.Name);
        Assert.Contains(reason, merged.Reason);
        Assert.Empty(llama.Adapters);
        double diff = LlamaFixtures.MaxAbsDiff(LlamaFixtures.Reference(Path.Combine(c, "logits_adapter.safetensors")), LlamaFixtures.AllLogits(llama, rows));
        Assert.True(diff < Tolerance, $"{name}: max |llama - peft| = {diff}");
        Assert.Contains(Directory.GetFiles(Path.Combine(Cache)), f => Path.GetFileName(f).StartsWith("model-", StringComparison.Ordinal));
        Assert.Contains("merged into the base and always applies", Assert.Throws<KeyNotFoundException>(() => llama.Logits(rows[0], [new AdapterScale("m")])).Message);
    }

    [Fact]
    public void Prompt_learning_is_refused_with_the_reason_and_a_merged_adapter_cannot_be_scaled()
    {
        string c = LlamaFixtures.CaseFolder("prompt_tuning_llama");
        var e = Assert.Throws<NotSupportedException>(() => InferenceBackends.Open(LlamaFixtures.Options(InferenceBackendKind.Llama, Path.Combine(c, "base"), Cache, GgmlType.F32,
            new AdapterSpec("pt", Path.Combine(c, "adapter")))));
        Assert.Contains("adapter 'pt'", e.Message);
        Assert.Contains("PROMPT_TUNING", e.Message);
        Assert.Contains("cannot be merged", e.Message);
        Assert.Contains("--backend torch", e.Message);

        string ia3 = LlamaFixtures.CaseFolder("ia3_llama");
        var scaled = Assert.Throws<NotSupportedException>(() => InferenceBackends.Open(LlamaFixtures.Options(InferenceBackendKind.Llama, Path.Combine(ia3, "base"), Cache, GgmlType.F32,
            new AdapterSpec("i", Path.Combine(ia3, "adapter"), Scale: 0.5))));
        Assert.Contains("scale 1 only", scaled.Message);
    }

    [Theory]
    [InlineData(GgmlType.Q8_0)]
    [InlineData(GgmlType.Q4_0)]
    public void Beside_a_quantized_base_the_factors_are_q8_0_with_padded_ranks_and_carry_peft_s_update(GgmlType quant)
    {
        string c = LlamaFixtures.CaseFolder("lora_rslora_llama");
        int[][] rows = LlamaFixtures.Rows(Path.Combine(c, "inputs.json"));
        float[] peftBase = LlamaFixtures.Reference(Path.Combine(c, "logits_base.safetensors"));
        float[] peftUpdate = [.. LlamaFixtures.Reference(Path.Combine(c, "logits_adapter.safetensors")).Select((v, i) => v - peftBase[i])];
        using var llama = (LlamaBackend)InferenceBackends.Open(LlamaFixtures.Options(InferenceBackendKind.Llama, Path.Combine(c, "base"), Cache, quant,
            new AdapterSpec("a", Path.Combine(c, "adapter"))));
        Assert.Equal(GgmlType.Q8_0, llama.Files.LoraFactors);
        using (GgufFile lora = GgufFile.Open(llama.Files.Unmerged[0].LoraGguf))
        {
            // Rank 12 for the fused Q/K/V pair, padded to one block of 32 (so B is q8_0 too); attn_output's rank 4 stays
            // (padding would make it larger), its B f32.
            Assert.Equal([32UL, 32UL], lora.GetTensor("blk.0.attn_qkv.weight.lora_a").Dimensions);
            Assert.Equal([32UL, 64UL], lora.GetTensor("blk.0.attn_qkv.weight.lora_b").Dimensions);
            Assert.Equal(GgmlType.Q8_0, lora.GetTensor("blk.0.attn_qkv.weight.lora_b").Type);
            Assert.Equal([4UL, 32UL], lora.GetTensor("blk.1.attn_output.weight.lora_b").Dimensions);
            Assert.Equal(GgmlType.F32, lora.GetTensor("blk.1.attn_output.weight.lora_b").Type);
            Assert.All(lora.Tensors.Where(t => t.Name.EndsWith(".lora_a", StringComparison.Ordinal)), t => Assert.Equal(GgmlType.Q8_0, t.Type));
        }
        // The same adapter with f32 factors of its own rank, applied by llama.cpp to the same base file: what the adapter
        // changes in the logits (with it minus without) is the same within q8_0's rounding of the factors.
        string f32Lora = Path.Combine(_scratch.Path, "f32-lora.gguf");
        GgufLoraExporter.Build(Path.Combine(c, "base"), Path.Combine(c, "adapter"), PluginDirs.Installed, GgmlType.F32, out _, GgufQkvLayout.Fused).Write(f32Lora);
        using var model = LlamaCppModel.Open(llama.Files.BaseGguf);
        using var context = new LlamaCppContext(model, new LlamaCppContextOptions { ContextSize = 128 });
        LlamaCppAdapter q8 = model.LoadAdapter(llama.Files.Unmerged[0].LoraGguf, "q8_0"), f32 = model.LoadAdapter(f32Lora, "f32");
        float[] Update(LlamaCppAdapter a) => [.. rows.SelectMany(r =>
        {
            context.SetAdapters([]);
            float[] off = context.ComputeLogits(r);
            context.SetAdapters([(a, 1f)]);
            return context.ComputeLogits(r).Select((v, i) => v - off[i]);
        })];
        float[] exact = Update(f32), rounded = Update(q8);
        double scale = exact.Max(Math.Abs), diff = LlamaFixtures.MaxAbsDiff(exact, rounded);
        double toPeft = LlamaFixtures.MaxAbsDiff(peftUpdate, rounded), peftScale = peftUpdate.Max(Math.Abs);
        // Measured 2.4 % (q8_0 base) and 2.0 % (q4_0): llama.cpp also rounds the factors' inputs to q8_0.
        Assert.True(diff < 0.05 * scale, $"{quant}: q8_0 factors change the adapter's update by {diff} (largest update {scale})");
        // Against PEFT's own update the base's rounding dominates: q8_0 factors add nothing measurable to it (0.172 both ways
        // on the q8_0 base, 2.12 against 2.17 on q4_0, whose 32-wide tiny model rounds coarsely).
        Assert.True(toPeft < LlamaFixtures.MaxAbsDiff(peftUpdate, exact) + 0.01 * peftScale,
            $"{quant}: with q8_0 factors the update is {toPeft} from PEFT's, with f32 factors {LlamaFixtures.MaxAbsDiff(peftUpdate, exact)}");
        if (quant == GgmlType.Q8_0) Assert.True(toPeft < 0.1 * peftScale, $"q8_0: the update is {toPeft} from PEFT's (largest {peftScale})");
    }

    [Fact]
    public void Quantized_bases_stay_close_to_f32()
    {
        string c = LlamaFixtures.CaseFolder("lora_rslora_llama");
        int[][] rows = LlamaFixtures.Rows(Path.Combine(c, "inputs.json"));
        float[] reference = LlamaFixtures.Reference(Path.Combine(c, "logits_adapter.safetensors"));
        var adapter = new AdapterSpec("a", Path.Combine(c, "adapter"));
        double scale = reference.Max(Math.Abs);
        foreach ((GgmlType q, double bound) in new[] { (GgmlType.F16, 0.01), (GgmlType.Q8_0, 0.05) })
        {
            using IInferenceBackend llama = InferenceBackends.Open(LlamaFixtures.Options(InferenceBackendKind.Llama, Path.Combine(c, "base"), Cache, q, adapter));
            double diff = LlamaFixtures.MaxAbsDiff(reference, LlamaFixtures.AllLogits(llama, rows));
            Assert.True(diff < bound * scale, $"{q}: max diff {diff} against a logit scale of {scale}");
        }
    }
}
