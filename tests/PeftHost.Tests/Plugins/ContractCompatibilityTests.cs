using PeftHost.Engine.Peft;
using PeftHost.Engine.Plugins;
using PeftHost.Models;
using PeftHost.Tests.PeftReference;
using PeftHost.Tests.Support;
using Xunit;
using static TorchSharp.torch;

namespace PeftHost.Tests;

/// <summary>
/// Contract 1.x stays binary compatible: the LoRA and IA3 plugins as built from the contract 1.0
/// commit (tests/fixtures/contract-1.0, see its README) load into this host, apply PEFT-made adapters
/// with PEFT's numbers and the current plugins' numbers, save files the current plugins load, and hand
/// their adapters to the current build and back on a hot reload.
/// </summary>
public class ContractCompatibilityTests
{
    private static string Build10(string id) => Path.Combine(Repo.Root, "tests", "fixtures", "contract-1.0", id);

    [Theory]
    [InlineData("lora", "lora_dora_llama")]
    [InlineData("lora", "lora_embedding_llama")]
    [InlineData("ia3", "ia3_llama")]
    public void A_plugin_built_against_contract_1_0_loads_runs_saves_and_reloads(string id, string caseName)
    {
        var c = new PeftCase(caseName);
        string dll = Directory.GetFiles(Build10(id), "*.dll").Single();
        Assert.Equal("1.0", PluginManifestReader.TryRead(dll)!.ContractVersion);

        using var plugins = new ScratchFolder();
        using var saved = new ScratchFolder();
        string folder = Path.Combine(plugins.Path, id);
        PluginDirs.Copy(Build10(id), folder);
        using var catalog = new PluginCatalog(new PluginCatalogOptions { PluginsDirectory = plugins.Path, HotReload = false });
        catalog.Scan();
        PluginInfo info = catalog.Plugins.Single();
        Assert.True(info.Status == PluginStatus.Loaded, info.Error);

        using ModelInputs inputs = c.Inputs();
        using PluginCatalog current = PeftCase.Catalog();
        Tensor currentLogits;
        using (nn.Module reference = c.LoadBase())
        using (PeftModel now = PeftModel.FromPretrained(reference, c.AdapterDir(), current))
            currentLogits = PeftCase.CausalLogits(now, inputs);

        using nn.Module model = c.LoadBase();
        using (currentLogits)
        using (PeftModel peft = PeftModel.FromPretrained(model, c.AdapterDir(), catalog))
        {
            // Applied: PEFT's numbers, and the current plugin's.
            using (Tensor logits = PeftCase.CausalLogits(peft, inputs))
            {
                c.AssertLogits(logits, "logits_adapter");
                Assert.True(Tensors.MaxAbsDiff(logits, currentLogits) < 1e-6);
            }

            // Saved by the 1.0 plugin, loaded by the current one.
            peft.SavePretrained(saved.Path);
            using (nn.Module other = c.LoadBase())
            using (PeftModel loaded = PeftModel.FromPretrained(other, saved.Path, current))
            using (Tensor logits = PeftCase.CausalLogits(loaded, inputs))
                c.AssertLogits(logits, "logits_adapter");

            // Hot reload: 1.0 -> current build -> 1.0, the adapter handed over each time.
            PluginDirs.Copy(Path.Combine(PluginDirs.Installed, id), folder);
            ReloadResult up = catalog.Reload(folder);
            Assert.True(up.Succeeded, up.Error);
            using (Tensor logits = PeftCase.CausalLogits(peft, inputs))
                Assert.True(Tensors.MaxAbsDiff(logits, currentLogits) < 1e-6);
            PluginDirs.Copy(Build10(id), folder);
            ReloadResult down = catalog.Reload(folder);
            Assert.True(down.Succeeded, down.Error);
            using (Tensor logits = PeftCase.CausalLogits(peft, inputs))
                c.AssertLogits(logits, "logits_adapter");

            peft.MergeAndUnload();
        }
        using (no_grad())
        using (Tensor merged = ((ICausalLM)model).Forward(inputs.InputIds, inputs.AttentionMask))
            c.AssertLogits(merged, "logits_merged");
        Assert.Equal(0, catalog.CountLeakedContexts());
    }
}
