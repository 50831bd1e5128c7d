using System.Text.Json.Nodes;
using PeftHost.Abstractions.State;
using PeftHost.Engine.Peft;
using PeftHost.Engine.Plugins;
using PeftHost.Formats.Safetensors;
using PeftHost.Models;
using PeftHost.Tests.Support;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace PeftHost.Tests.Inference;

public class PissaConversionTests
{
    private static JsonObject Config(string init, bool rslora) => new()
    {
        ["peft_type"] = "LORA", ["r"] = 4, ["lora_alpha"] = 8, ["use_rslora"] = rslora,
        ["target_modules"] = new JsonArray("q_proj", "v_proj"), ["init_lora_weights"] = init,
    };

    private static Dictionary<string, Tensor> Weights(nn.Module model) =>
        model.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());

    [Theory]
    [InlineData("pissa", false)]
    [InlineData("olora", false)]
    [InlineData("pissa", true)]
    public void Untouched_base_plus_converted_adapter_equals_residual_base_plus_trained_adapter(string init, bool rslora)
    {
        using var catalog = new PluginCatalog(new PluginCatalogOptions { PluginsDirectory = PluginDirs.Installed, HotReload = false });
        catalog.Scan();
        using var dir = new ScratchFolder();
        using Tensor ids = torch.tensor(new long[] { 5, 17, 99, 3, 250, 42, 7 }).unsqueeze(0);

        (_, nn.Module residual) = ModelPresets.Create("llama", "tiny", seed: 11);
        Dictionary<string, Tensor> expected;
        Tensor expectedLogits;
        using (var peft = new PeftModel(residual, catalog))
        {
            peft.AddAdapter("default", Config(init, rslora));
            using AdapterState initial = peft.ExportAdapter("default");
            // "Training": the factors move away from their initial values.
            torch.manual_seed(3);
            using (no_grad())
                foreach ((string name, var p) in residual.named_parameters())
                    if (name.Contains("lora_")) p.add_(torch.randn_like(p) * 0.05);
            using (no_grad()) expectedLogits = peft.Run(() => ((ICausalLM)residual).Forward(ids));
            peft.SavePretrained(dir.Path, convertFromInitial: initial);
            expected = Weights(peft.MergeAndUnload());
        }
        residual.Dispose();

        JsonNode saved = JsonNode.Parse(File.ReadAllText(Path.Combine(dir.Path, AdapterFolder.ConfigFile)))!;
        Assert.True(saved["init_lora_weights"]!.GetValue<bool>());
        Assert.Equal(8, saved["r"]!.GetValue<int>());
        Assert.Equal(rslora ? 8 * Math.Sqrt(2) : 16, saved["lora_alpha"]!.GetValue<double>(), 9);
        using (var file = SafetensorsFile.Open(Path.Combine(dir.Path, AdapterFolder.WeightsFile)))
        {
            Assert.Equal([8L, 64], file.Info("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight").Shape);
            Assert.Equal([64L, 8], file.Info("base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight").Shape);
        }

        (_, nn.Module original) = ModelPresets.Create("llama", "tiny", seed: 11);
        using (PeftModel loaded = PeftModel.FromPretrained(original, dir.Path, catalog))
        {
            using (no_grad())
            using (Tensor logits = loaded.Run(() => ((ICausalLM)original).Forward(ids)))
                Assert.True(Tensors.MaxAbsDiff(logits, expectedLogits) < 1e-4);
            Dictionary<string, Tensor> actual = Weights(loaded.MergeAndUnload());
            Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
            foreach ((string name, Tensor w) in expected)
                Assert.True(Tensors.MaxAbsDiff(w, actual[name]) < 1e-5, name);
        }
        original.Dispose();
        expectedLogits.Dispose();
    }

    [Fact]
    public void A_missing_initial_factor_is_an_error_naming_it_and_nothing_is_written()
    {
        using var catalog = new PluginCatalog(new PluginCatalogOptions { PluginsDirectory = PluginDirs.Installed, HotReload = false });
        catalog.Scan();
        using var dir = new ScratchFolder();
        (_, nn.Module model) = ModelPresets.Create("llama", "tiny", seed: 1);
        using (var peft = new PeftModel(model, catalog))
        {
            peft.AddAdapter("default", Config("pissa", rslora: false));
            using AdapterState initial = peft.ExportAdapter("default");
            string dropped = initial.Tensors.Keys.First(k => k.Contains("lora_B"));
            using var partial = new AdapterState("initial", initial.Config, initial.Tensors.Where(t => t.Key != dropped).ToDictionary(t => t.Key, t => t.Value.clone()));
            var e = Assert.Throws<InvalidDataException>(() => peft.SavePretrained(dir.Path, convertFromInitial: partial));
            Assert.Contains(dropped, e.Message);
            Assert.Empty(Directory.GetFileSystemEntries(dir.Path));
        }
        model.Dispose();
    }
}
