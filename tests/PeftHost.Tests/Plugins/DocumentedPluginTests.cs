using System.Text.Json.Nodes;
using PeftHost.Engine.Peft;
using PeftHost.Engine.Plugins;
using PeftHost.Formats.Safetensors;
using PeftHost.Models.Checkpoint;
using PeftHost.Tests.Support;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace PeftHost.Tests;

/// <summary>
/// tests/Fixtures/OutputScale, a plugin written from docs/writing-a-tuner.md alone (OUTPUT_SCALE:
/// y = base(x) · s per output feature): it loads, applies, saves and reloads like the real methods.
/// </summary>
public class DocumentedPluginTests
{
    private static JsonObject Config(double init) => new()
    {
        ["peft_type"] = "OUTPUT_SCALE", ["target_modules"] = new JsonArray("q_proj"), ["init_scale"] = init,
    };

    private static (ScratchFolder Dir, PluginCatalog Catalog) Catalog()
    {
        var dir = PluginDirs.Scratch();
        PluginDirs.Copy(PluginDirs.Fixture("OutputScale"), Path.Combine(dir.Path, "output-scale"));
        var catalog = new PluginCatalog(new PluginCatalogOptions { PluginsDirectory = dir.Path, HotReload = false });
        catalog.Scan();
        return (dir, catalog);
    }

    // The independent reference: the same model with every q_proj's weight rows and bias scaled by hand.
    private static Tensor Expected(Tensor x, double scale)
    {
        var model = new TwoBlocks();
        using (no_grad())
            foreach ((string name, var p) in model.named_parameters())
                if (name.Contains(".q_proj.", StringComparison.Ordinal)) p.mul_(scale);
        return model.forward(x);
    }

    [Fact]
    public void It_loads_and_serves_its_peft_type()
    {
        (ScratchFolder dir, PluginCatalog catalog) = Catalog();
        using (dir)
        using (catalog)
        {
            PluginInfo info = catalog.Plugins.Single();
            Assert.True(info.Status == PluginStatus.Loaded, info.Error);
            Assert.Equal("output-scale", info.Id);
            Assert.Equal(["OUTPUT_SCALE"], info.Methods);
            Assert.Equal("OUTPUT_SCALE", catalog.GetTuner("OUTPUT_SCALE").PeftType);
        }
    }

    [Fact]
    public void It_applies_scales_trains_only_its_vectors_and_merges_to_the_same_numbers()
    {
        (ScratchFolder dir, PluginCatalog catalog) = Catalog();
        using (dir)
        using (catalog)
        {
            var model = new TwoBlocks();
            using var x = torch.randn(3, 8);
            using var baseOut = model.forward(x);
            using var peft = new PeftModel(model, catalog);
            peft.AddAdapter("default", Config(1.5));
            using Tensor expected = Expected(x, 1.5);
            using (Tensor y = peft.Forward(x)) Assert.True(Tensors.MaxAbsDiff(y, expected) < 1e-6);
            Assert.Equal(["base_model.model.layers.0.q_proj.output_scale.default", "base_model.model.layers.1.q_proj.output_scale.default"],
                peft.NamedParameters().Where(p => p.Parameter.requires_grad).Select(p => p.Name).Order(StringComparer.Ordinal));
            using (peft.DisableAdapter())
            using (Tensor y = peft.Forward(x))
                Assert.Equal(0.0, Tensors.MaxAbsDiff(y, baseOut));
            peft.Merge(safeMerge: true);
            using (Tensor y = peft.Forward(x)) Assert.True(Tensors.MaxAbsDiff(y, expected) < 1e-6);
            peft.Unmerge();
            using (peft.DisableAdapter())
            using (Tensor y = peft.Forward(x))
                Assert.True(Tensors.MaxAbsDiff(y, baseOut) < 1e-6);
        }
    }

    [Fact]
    public void It_saves_its_config_and_one_vector_per_module_under_peft_style_keys()
    {
        (ScratchFolder dir, PluginCatalog catalog) = Catalog();
        using (dir)
        using (catalog)
        using (var saved = new ScratchFolder())
        {
            using (var peft = new PeftModel(new TwoBlocks(), catalog))
            {
                peft.AddAdapter("default", Config(2.0));
                peft.SavePretrained(saved.Path);
            }
            JsonNode config = JsonNode.Parse(File.ReadAllText(Path.Combine(saved.Path, AdapterFolder.ConfigFile)))!;
            Assert.Equal("OUTPUT_SCALE", config["peft_type"]!.GetValue<string>());
            Assert.Equal(2.0, config["init_scale"]!.GetValue<double>());
            Assert.Equal(["q_proj"], config["target_modules"]!.AsArray().Select(n => n!.GetValue<string>()));
            using var file = SafetensorsFile.Open(Path.Combine(saved.Path, AdapterFolder.WeightsFile));
            Assert.Equal(["base_model.model.layers.0.q_proj.output_scale", "base_model.model.layers.1.q_proj.output_scale"],
                file.Tensors.Select(t => t.Name).Order(StringComparer.Ordinal));
            using Tensor scale = TensorBridge.Read(file, "base_model.model.layers.0.q_proj.output_scale", ScalarType.Float32);
            Assert.Equal([8L], scale.shape);
            Assert.Equal(0.0, Tensors.MaxAbsDiff(scale, torch.full(8, 2.0f)));
        }
    }

    [Fact]
    public void It_reloads_from_its_files_and_across_a_hot_reload_with_the_same_numbers()
    {
        (ScratchFolder dir, PluginCatalog catalog) = Catalog();
        using (dir)
        using (catalog)
        using (var saved = new ScratchFolder())
        {
            using var x = torch.randn(3, 8);
            using Tensor expected = Expected(x, 0.5);
            using (var peft = new PeftModel(new TwoBlocks(), catalog))
            {
                peft.AddAdapter("default", Config(0.5));
                peft.SavePretrained(saved.Path);
            }

            using var loaded = PeftModel.FromPretrained(new TwoBlocks(), saved.Path, catalog);
            using (Tensor y = loaded.Forward(x)) Assert.True(Tensors.MaxAbsDiff(y, expected) < 1e-6);
            ReloadResult result = catalog.Reload(Path.Combine(dir.Path, "output-scale"));
            Assert.True(result.Succeeded, result.Error);
            using (Tensor y = loaded.Forward(x)) Assert.True(Tensors.MaxAbsDiff(y, expected) < 1e-6);
            Assert.Equal(0, catalog.CountLeakedContexts());
        }
    }
}
