using System.Text.Json.Nodes;
using PeftHost.Abstractions.Config;
using PeftHost.Engine.Peft;
using PeftHost.Engine.Plugins;
using PeftHost.Formats.Safetensors;
using PeftHost.Models;
using PeftHost.Models.Checkpoint;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace PeftHost.Tests.PeftReference;

/// <summary>
/// FourierFT adapters written by PEFT 0.13.2: spectra at torch.randperm's seeded locations (TorchSharp's CPU
/// generator gives torch 1.13's permutation), n_frequency_pattern, GPT-2 Conv1D (whose merge PEFT 0.13.2 gets
/// wrong; here the merge equals PEFT's unmerged forward).
/// </summary>
public class FourierFtReferenceTests
{
    [Theory]
    [InlineData("fourierft_llama")]
    [InlineData("fourierft_llama_options")]
    public void Adapter_matches_peft_unmerged_disabled_saved_and_merged(string caseName) =>
        AdapterCaseChecks.AssertMatchesReference(caseName, "logits_merged");

    [Fact]
    public void Conv1d_adapter_matches_peft_unmerged_and_merges_to_the_same_numbers()
    {
        // PEFT 0.13.2 cannot merge here (merge_refused in meta.json: ΔW not transposed); the merge must equal the
        // unmerged forward, which PEFT computes correctly.
        var c = new PeftCase("fourierft_gpt2_conv1d");
        Assert.Contains("must match the size", c.Meta["merge_refused"]!.GetValue<string>());
        AdapterCaseChecks.AssertMatchesReference("fourierft_gpt2_conv1d", "logits_adapter");
    }

    [Fact]
    public void Torchsharp_randperm_with_a_seeded_generator_gives_peft_frequency_locations()
    {
        // The plugin draws torch.randperm(out * in, generator=torch.Generator().manual_seed(seed))[:n] through
        // TorchSharp; PEFT's own indices for GPT-2's c_attn (96 x 32) and c_fc (64 x 32), seed 777.
        var c = new PeftCase("fourierft_gpt2_conv1d");
        int n = c.Meta["peft_config_passed"]!["n_frequency"]!.GetValue<int>();
        using var file = SafetensorsFile.Open(Path.Combine(c.Folder, "fourierft_indices.safetensors"));
        Assert.NotEmpty(file.Tensors);
        foreach (SafetensorsTensorInfo info in file.Tensors)
        {
            using Tensor expected = TensorBridge.Read(file, info.Name);
            long fin = 32, fout = info.Name.EndsWith("c_attn", StringComparison.Ordinal) ? 96 : 64;
            using var generator = new Generator(777, CPU);
            using Tensor idx = randperm(fout * fin, generator: generator).narrow(0, 0, n);
            using Tensor rows = idx.div(fin, rounding_mode: RoundingMode.floor);
            using Tensor cols = idx.remainder(fin);
            using Tensor mine = stack([rows, cols]);
            Assert.True(mine.Equals(expected.to(ScalarType.Int64)), info.Name);
        }
    }

    [Fact]
    public void N_frequency_larger_than_the_layer_is_refused_with_peft_message()
    {
        var c = new PeftCase("fourierft_llama");
        using PluginCatalog catalog = PeftCase.Catalog();
        using nn.Module model = c.LoadBase();
        using var peft = new PeftModel(model, catalog);
        var config = new JsonObject { ["peft_type"] = "FOURIERFT", ["n_frequency"] = 2000, ["target_modules"] = new JsonArray("k_proj") };
        var e = Assert.Throws<TunerConfigException>(() => peft.AddAdapter("default", config));
        Assert.Contains("`n_frequency` should be less than or equal to the product of the input and output dimensions but the value passed is 2000 and the product is 512", e.Message);
        Assert.Empty(peft.Adapters);
    }

    [Fact]
    public void A_regex_target_with_layers_to_transform_is_refused_as_peft_refuses_it()
    {
        using PluginCatalog catalog = PeftCase.Catalog();
        var json = new JsonObject { ["peft_type"] = "FOURIERFT", ["target_modules"] = ".*q_proj", ["layers_to_transform"] = new JsonArray(0) };
        var e = Assert.Throws<TunerConfigException>(() => catalog.GetTuner("FOURIERFT").ParseConfig(json));
        Assert.Contains("`layers_to_transform` cannot be used when `target_modules` is a str", e.Message);
    }

    [Fact]
    public void Training_steps_match_peft() => TrainingReplay.AssertTrainsLikeReference("train_fourierft_llama");
}
