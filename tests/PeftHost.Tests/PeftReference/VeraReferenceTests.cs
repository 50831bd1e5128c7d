using System.Text.Json.Nodes;
using PeftHost.Abstractions.Config;
using PeftHost.Abstractions.Layers;
using PeftHost.Abstractions.State;
using PeftHost.Engine.Peft;
using PeftHost.Engine.Plugins;
using PeftHost.Formats.Safetensors;
using PeftHost.Models;
using PeftHost.Tests.Support;
using Xunit;
using static TorchSharp.torch;

namespace PeftHost.Tests.PeftReference;

/// <summary>
/// VeRA adapters written by PEFT 0.13.2: the shared vera_A / vera_B saved under <c>base_model.</c> (model-level
/// tensors of the contract), regenerated from projection_prng_key when a file has none, the per-layer vectors,
/// Conv1D's fan_in_fan_out, merging, and PEFT's refusals.
/// </summary>
public class VeraReferenceTests
{
    [Theory]
    [InlineData("vera_llama")]
    [InlineData("vera_llama_dinit_key")]
    [InlineData("vera_gpt2_conv1d")]
    public void Adapter_matches_peft_unmerged_disabled_saved_and_merged(string caseName) =>
        AdapterCaseChecks.AssertMatchesReference(caseName, "logits_merged");

    [Theory]
    [InlineData("vera_llama")]
    [InlineData("vera_llama_dinit_key")]
    [InlineData("vera_gpt2_conv1d")]
    public void A_new_adapter_draws_peft_projections_from_the_seed_and_starts_as_peft_does(string caseName)
    {
        var c = new PeftCase(caseName);
        using PluginCatalog catalog = PeftCase.Catalog();
        using nn.Module model = c.LoadBase();
        using var peft = new PeftModel(model, catalog);
        JsonObject passed = c.Meta["peft_config_passed"]!.AsObject();
        peft.AddAdapter("default", passed);

        using AdapterState mine = peft.ExportAdapter("default");
        using AdapterState saved = AdapterFolder.Read(c.AdapterDir(), "default");
        Assert.Equal(["vera_A", "vera_B"], mine.ModelTensors.Keys.Order(StringComparer.Ordinal));
        foreach (string key in new[] { "vera_A", "vera_B" })
            Assert.True(mine.ModelTensors[key].Equals(saved.ModelTensors[key]), $"{caseName}: {key} drawn from projection_prng_key differs from PEFT's");

        double dInitial = passed["d_initial"]!.GetValue<double>();
        Assert.All(mine.Tensors.Where(t => t.Key.EndsWith(".vera_lambda_b", StringComparison.Ordinal)), t => Assert.Equal(0, t.Value.abs().max().item<float>()));
        Assert.All(mine.Tensors.Where(t => t.Key.EndsWith(".vera_lambda_d", StringComparison.Ordinal)), t => Assert.True((t.Value - dInitial).abs().max().item<float>() < 1e-7));
        Assert.Equal(saved.Tensors.Keys.Order(StringComparer.Ordinal), mine.Tensors.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(c.Meta["trainable_parameters"]!["trainable"]!.GetValue<long>(), peft.TrainableParameterCounts().Trainable);
    }

    [Fact]
    public void Saved_projections_go_under_base_model_outside_any_module()
    {
        var c = new PeftCase("vera_llama");
        using PluginCatalog catalog = PeftCase.Catalog();
        using nn.Module model = c.LoadBase();
        using PeftModel peft = PeftModel.FromPretrained(model, c.AdapterDir(), catalog);
        using var dir = new ScratchFolder();
        peft.SavePretrained(dir.Path);
        using var file = SafetensorsFile.Open(Path.Combine(dir.Path, AdapterFolder.WeightsFile));
        var names = file.Tensors.Select(t => t.Name).ToList();
        Assert.Contains("base_model.vera_A", names);
        Assert.Contains("base_model.vera_B", names);
        Assert.DoesNotContain(names, n => n.Contains("vera_A", StringComparison.Ordinal) && n != "base_model.vera_A");
        Assert.All(names.Where(n => !n.StartsWith("base_model.vera_", StringComparison.Ordinal)), n => Assert.StartsWith("base_model.model.", n));
    }

    [Fact]
    public void Without_saved_projections_the_seed_regenerates_them_and_the_numbers_stay()
    {
        var c = new PeftCase("vera_llama");
        using var dir = new ScratchFolder();
        CopyAdapter(c.AdapterDir(), dir.Path, dropProjections: true, saveProjection: false);
        using PluginCatalog catalog = PeftCase.Catalog();
        using ModelInputs inputs = c.Inputs();
        using nn.Module model = c.LoadBase();
        using PeftModel peft = PeftModel.FromPretrained(model, dir.Path, catalog);
        using (Tensor logits = PeftCase.CausalLogits(peft, inputs)) c.AssertLogits(logits, "logits_adapter");
        using AdapterState state = peft.ExportAdapter("default");
        Assert.Empty(state.ModelTensors);
    }

    [Fact]
    public void Projections_missing_from_a_file_that_says_it_saved_them_are_an_error()
    {
        var c = new PeftCase("vera_llama");
        using var dir = new ScratchFolder();
        CopyAdapter(c.AdapterDir(), dir.Path, dropProjections: true, saveProjection: true);
        using PluginCatalog catalog = PeftCase.Catalog();
        using nn.Module model = c.LoadBase();
        using var peft = new PeftModel(model, catalog);
        var e = Assert.Throws<InvalidDataException>(() => peft.LoadAdapter(dir.Path, "default"));
        Assert.Contains("Specified to load vera_A and vera_B from state dictionary however they were not present", e.Message);
        Assert.Empty(peft.Adapters);
        Assert.DoesNotContain(model.modules(), m => m is TunerLayer);
    }

    [Fact]
    public void Saved_projections_are_used_when_present()
    {
        // PEFT 0.13.2 never loads them (it regenerates the same values); a file's own projections are what it holds.
        var c = new PeftCase("vera_llama");
        using var dir = new ScratchFolder();
        CopyAdapter(c.AdapterDir(), dir.Path, dropProjections: false, saveProjection: true, projectionScale: 3);
        using PluginCatalog catalog = PeftCase.Catalog();
        using ModelInputs inputs = c.Inputs();
        using nn.Module model = c.LoadBase();
        using PeftModel peft = PeftModel.FromPretrained(model, dir.Path, catalog);
        using AdapterState state = peft.ExportAdapter("default");
        using AdapterState original = AdapterFolder.Read(c.AdapterDir(), "default");
        Assert.True((state.ModelTensors["vera_A"] - original.ModelTensors["vera_A"] * 3).abs().max().item<float>() < 1e-6);
        using Tensor logits = PeftCase.CausalLogits(peft, inputs);
        using Tensor reference = c.Logits("logits_adapter");
        Assert.True(Tensors.MaxAbsDiff(logits, reference) > 1e-3);
    }

    [Fact]
    public void Adapters_with_different_prng_keys_are_refused_as_peft_refuses_them()
    {
        var c = new PeftCase("vera_llama");
        using PluginCatalog catalog = PeftCase.Catalog();
        using nn.Module model = c.LoadBase();
        using PeftModel peft = PeftModel.FromPretrained(model, c.AdapterDir(), catalog);
        JsonObject other = c.Meta["peft_config_passed"]!.AsObject().DeepClone().AsObject();
        other["projection_prng_key"] = 7;
        var e = Assert.Throws<TunerConfigException>(() => peft.AddAdapter("other", other));
        Assert.Contains("Vera PRNG initialisation key must be the same for all adapters. Got config.projection_prng_key=7 but previous config had 0", e.Message);
        Assert.Equal(["default"], peft.Adapters);
    }

    [Fact]
    public void An_embedding_target_is_refused()
    {
        var c = new PeftCase("vera_llama");
        using PluginCatalog catalog = PeftCase.Catalog();
        using nn.Module model = c.LoadBase();
        using var peft = new PeftModel(model, catalog);
        JsonObject config = new() { ["peft_type"] = "VERA", ["r"] = 4, ["target_modules"] = new JsonArray("embed_tokens") };
        var e = Assert.Throws<TunerConfigException>(() => peft.AddAdapter("default", config));
        Assert.Contains("embed_tokens", e.Message);
        Assert.DoesNotContain(model.modules(), m => m is TunerLayer);
    }

    [Fact]
    public void Default_targets_come_from_peft_table_for_the_model_type()
    {
        var c = new PeftCase("vera_llama");
        using PluginCatalog catalog = PeftCase.Catalog();
        using nn.Module model = c.LoadBase();
        using var peft = new PeftModel(model, catalog);
        peft.AddAdapter("default", new JsonObject { ["peft_type"] = "VERA", ["r"] = 4 });
        using AdapterState state = peft.ExportAdapter("default");
        Assert.Equal(["q_proj", "v_proj"], state.Config["target_modules"]!.AsArray().Select(n => n!.GetValue<string>()).Order(StringComparer.Ordinal));
        Assert.Equal(4, state.Tensors.Count(t => t.Key.EndsWith(".vera_lambda_b", StringComparison.Ordinal)));
    }

    [Fact]
    public void Delete_restores_the_base_model_exactly()
    {
        var c = new PeftCase("vera_gpt2_conv1d");
        using PluginCatalog catalog = PeftCase.Catalog();
        using ModelInputs inputs = c.Inputs();
        using nn.Module model = c.LoadBase();
        using Tensor before = AdapterCaseChecks.Logits(model, inputs);
        using PeftModel peft = PeftModel.FromPretrained(model, c.AdapterDir(), catalog);
        peft.DeleteAdapter("default");
        Assert.Empty(peft.Adapters);
        Assert.DoesNotContain(model.modules(), m => m is TunerLayer);
        using Tensor after = AdapterCaseChecks.Logits(model, inputs);
        Assert.True(after.Equals(before));
    }

    [Fact]
    public void Hot_reload_hands_the_adapter_and_its_shared_projections_to_the_new_plugin_load()
    {
        var c = new PeftCase("vera_llama");
        using var dir = PluginDirs.Scratch("vera");
        using var catalog = new PluginCatalog(new PluginCatalogOptions { PluginsDirectory = dir.Path, HotReload = false });
        catalog.Scan();
        using ModelInputs inputs = c.Inputs();
        using nn.Module model = c.LoadBase();
        using PeftModel peft = PeftModel.FromPretrained(model, c.AdapterDir(), catalog);
        using Tensor before = PeftCase.CausalLogits(peft, inputs);

        ReloadResult result = catalog.Reload(Path.Combine(dir.Path, "vera"));

        Assert.True(result.Succeeded, result.Error);
        Assert.Equal(["default"], peft.Adapters);
        using Tensor after = PeftCase.CausalLogits(peft, inputs);
        Assert.True(after.Equals(before));
        using AdapterState state = peft.ExportAdapter("default");
        using AdapterState saved = AdapterFolder.Read(c.AdapterDir(), "default");
        Assert.True(state.ModelTensors["vera_A"].Equals(saved.ModelTensors["vera_A"]));
        Assert.Equal(0, catalog.CountLeakedContexts());
    }

    [Fact]
    public void Training_steps_match_peft() => TrainingReplay.AssertTrainsLikeReference("train_vera_llama");

    // A copy of an adapter folder, its projections removed or scaled and save_projection set.
    private static void CopyAdapter(string from, string to, bool dropProjections, bool saveProjection, double projectionScale = 1)
    {
        using AdapterState state = AdapterFolder.Read(from, "default");
        state.Config["save_projection"] = saveProjection;
        var model = dropProjections ? new Dictionary<string, Tensor>() : state.ModelTensors.ToDictionary(t => t.Key, t => t.Value * projectionScale);
        using var copy = new AdapterState("default", state.Config, state.Tensors.ToDictionary(t => t.Key, t => t.Value.clone())) { ModelTensors = model };
        AdapterFolder.Write(to, copy, prefixKeys: true);
    }
}
