using PeftHost.Abstractions.Layers;
using PeftHost.Abstractions.State;
using PeftHost.Engine.Peft;
using PeftHost.Engine.Plugins;
using PeftHost.Formats.Safetensors;
using PeftHost.Models.Checkpoint;
using PeftHost.Tests.PeftReference;
using Xunit;
using static TorchSharp.torch;

namespace PeftHost.Tests.Peft;

/// <summary>
/// <see cref="PeftModel.ExportLowRank"/>, the ILowRankExportModel capability: the pairs of PEFT-made
/// LoRA and AdaLoRA adapters give each adapted module's output change (scale · B·A applied to the input in
/// the module's [out, in] orientation, for Linear, GPT-2's Conv1D and Embedding), LoRA's factors are the
/// file's own with PEFT's scaling formula, and what pairs cannot express is refused with the reason.
/// </summary>
public sealed class LowRankExportTests
{
    [Theory]
    [InlineData("lora_rslora_llama")]     // Linear, rsLoRA: scale alpha / √r
    [InlineData("lora_gpt2_conv1d")]      // GPT-2 Conv1D: weight stored [in, out], pairs still [out, in]
    [InlineData("adalora_llama")]         // AdaLoRA: B (A * E) · scaling / (ranknum + 1e-5)
    public void Pairs_give_each_modules_output_change(string name)
    {
        var c = new PeftCase(name);
        using PluginCatalog catalog = PeftCase.Catalog();
        using PeftModel peft = PeftModel.FromPretrained(c.LoadBase(), c.AdapterDir(), catalog);
        using LowRankExport export = peft.ExportLowRank("default");
        Assert.True(export.IsExpressed, export.Refusal);
        var layers = peft.BaseModel.named_modules().ToDictionary(m => m.name, m => m.module);
        Assert.Equal(layers.Where(l => l.Value is TunerLayer).Select(l => l.Key).Order(StringComparer.Ordinal), export.Modules.Select(m => m.ModulePath));
        foreach (LowRankFactors pair in export.Modules)
        {
            var layer = (TunerLayer)layers[pair.ModulePath];
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            Tensor x = randn(5, pair.InFeatures);
            Tensor change = layer.forward(x) - layer.BaseLayer.forward(x);
            Tensor expected = x.matmul(pair.B.matmul(pair.A).mul(pair.Scale).t());
            double diff = (change - expected).abs().max().item<float>();
            Assert.True(diff < 1e-5, $"{name} {pair.ModulePath}: |module change - x (scale B A)^T| = {diff}");
            Assert.True(change.abs().max().item<float>() > 1e-3, $"{name} {pair.ModulePath}: the adapter changes the module");
        }
    }

    [Fact]
    public void Lora_pairs_are_the_files_factors_with_peft_scaling()
    {
        var c = new PeftCase("lora_rslora_llama");
        using PluginCatalog catalog = PeftCase.Catalog();
        using PeftModel peft = PeftModel.FromPretrained(c.LoadBase(), c.AdapterDir(), catalog);
        using LowRankExport export = peft.ExportLowRank("default");
        using SafetensorsFile file = SafetensorsFile.Open(Path.Combine(c.AdapterDir(), AdapterFolder.WeightsFile));
        Assert.Equal(8.0, export.NominalAlpha);
        Assert.Equal(8, export.Modules.Count);
        foreach (LowRankFactors pair in export.Modules)
        {
            // PEFT: scaling = lora_alpha / sqrt(r) with use_rslora; r 4, alpha 8.
            Assert.Equal(8 / Math.Sqrt(4), pair.Scale, 12);
            using Tensor a = TensorBridge.Read(file, $"base_model.model.{pair.ModulePath}.lora_A.weight", ScalarType.Float32);
            using Tensor b = TensorBridge.Read(file, $"base_model.model.{pair.ModulePath}.lora_B.weight", ScalarType.Float32);
            Assert.True(a.allclose(pair.A, rtol: 0, atol: 0), pair.ModulePath + " A");
            Assert.True(b.allclose(pair.B, rtol: 0, atol: 0), pair.ModulePath + " B");
        }
    }

    [Fact]
    public void An_embeddings_pair_is_in_vocabulary_to_hidden_orientation_and_a_saved_base_embedding_is_refused()
    {
        var c = new PeftCase("lora_embedding_llama");
        using PluginCatalog catalog = PeftCase.Catalog();
        using PeftModel peft = PeftModel.FromPretrained(c.LoadBase(), c.AdapterDir(), catalog);
        // PEFT saved the whole base embedding with this adapter (embed_tokens is in target_modules).
        using (LowRankExport refused = peft.ExportLowRank("default"))
        {
            Assert.False(refused.IsExpressed);
            Assert.Contains("copy of the base weights of 'model.embed_tokens'", refused.Refusal);
            Assert.Empty(refused.Modules);
        }

        // The same factors targeted by a pattern carry no base copy: A [r, vocab], B [hidden, r]; row id of (scale B A)^T is the change of token id's embedding.
        using AdapterState state = AdapterFolder.Read(c.AdapterDir(), "p");
        state.Config["target_modules"] = @".*(embed_tokens|q_proj)";
        var tensors = state.Tensors.Where(t => !t.Key.Contains(".base_layer.", StringComparison.Ordinal)).ToDictionary(t => t.Key, t => t.Value);
        peft.ImportAdapter(new AdapterState("p", state.Config, tensors));
        using LowRankExport export = peft.ExportLowRank("p");
        LowRankFactors embedding = Assert.Single(export.Modules, m => m.ModulePath == "model.embed_tokens");
        Assert.Equal([4L, 64L], embedding.A.shape);
        Assert.Equal([32L, 4L], embedding.B.shape);
        peft.SetActiveAdapters("p");
        var layer = (TunerLayer)peft.BaseModel.named_modules().First(m => m.name == "model.embed_tokens").module;
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        Tensor ids = tensor(new long[] { 0, 5, 63, 5 });
        Tensor change = layer.forward(ids) - layer.BaseLayer.forward(ids);
        Tensor expected = embedding.B.matmul(embedding.A).mul(embedding.Scale).t().index_select(0, ids);
        Assert.True((change - expected).abs().max().item<float>() < 1e-5);
        Assert.True(change.abs().max().item<float>() > 1e-3);
    }

    [Theory]
    [InlineData("lora_dora_llama", "DoRA", "magnitude")]
    [InlineData("lora_all_linear_bias", "bias 'lora_only'", "biases")]
    [InlineData("lora_modules_to_save_bert", "modules_to_save (classifier)", "full trained copies")]
    public void What_pairs_cannot_express_is_refused_with_the_reason(string name, string reason, string why)
    {
        var c = new PeftCase(name);
        using PluginCatalog catalog = PeftCase.Catalog();
        using PeftModel peft = PeftModel.FromPretrained(c.LoadBase(), c.AdapterDir(), catalog);
        using LowRankExport export = peft.ExportLowRank("default");
        Assert.False(export.IsExpressed);
        Assert.Contains(reason, export.Refusal);
        Assert.Contains(why, export.Refusal);
        Assert.Contains("adapter 'default'", export.Refusal);
        Assert.Empty(export.Modules);
        Assert.True(peft.CanMerge("default"));
    }

    [Theory]
    [InlineData("ia3_llama", "IA3", true)]
    [InlineData("prompt_tuning_llama", "PROMPT_TUNING", false)]
    public void A_method_without_the_capability_is_refused_naming_its_peft_type(string name, string peftType, bool canMerge)
    {
        var c = new PeftCase(name);
        using PluginCatalog catalog = PeftCase.Catalog();
        using PeftModel peft = PeftModel.FromPretrained(c.LoadBase(), c.AdapterDir(), catalog);
        var e = Assert.Throws<NotSupportedException>(() => peft.ExportLowRank("default"));
        Assert.Contains($"peft_type {peftType}", e.Message);
        Assert.Contains("low-rank pairs", e.Message);
        Assert.Equal(canMerge, peft.CanMerge("default"));
        Assert.Throws<KeyNotFoundException>(() => peft.ExportLowRank("nope"));
    }

    [Fact]
    public void Factors_are_checked_and_an_export_owns_its_pairs()
    {
        Assert.Throws<ArgumentException>(() => new LowRankFactors("m", zeros(4, 8), zeros(6, 3), 1.0));
        Assert.Throws<ArgumentException>(() => new LowRankFactors("m", zeros(4, 8), zeros(6, 4), double.NaN));
        var a = new LowRankFactors("m", zeros(4, 8), zeros(6, 4), 2.0);
        var twice = new LowRankFactors("m", zeros(1, 8), zeros(6, 1), 2.0);
        var e = Assert.Throws<ArgumentException>(() => new LowRankExport("x", [a, twice]));
        Assert.Contains("module 'm' has two low-rank pairs", e.Message);
        twice.Dispose();
        var export = new LowRankExport("x", [a], nominalAlpha: 16);
        Assert.Equal((4, 8L, 6L), (a.Rank, a.InFeatures, a.OutFeatures));
        export.Dispose();
        Assert.True(a.A.IsInvalid && a.B.IsInvalid);
    }
}
