using PeftHost.Engine.Inference;
using PeftHost.Engine.Peft;
using PeftHost.Engine.Plugins;
using PeftHost.Models;
using PeftHost.Tests.Support;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace PeftHost.Tests.Reliability;

/// <summary>
/// Loading and deleting adapters, forward passes checked for NaN, saving, and plugin reloads free every tensor they
/// make (the figures over 1000 rounds come from `pefthost bench memory`): a temporary left to the finalizer shows as
/// a live handle of this thread.
/// </summary>
public sealed class LiveTensorTests
{
    [Fact]
    public void Adapter_rounds_and_plugin_reloads_leave_no_live_tensor_behind()
    {
        using ScratchFolder plugins = PluginDirs.Scratch("lora");
        string loraFolder = Path.Combine(plugins.Path, "lora");
        using var catalog = new PluginCatalog(new PluginCatalogOptions { PluginsDirectory = plugins.Path, HotReload = false });
        catalog.Scan();
        using var dir = new ScratchFolder();
        (_, nn.Module model) = ModelPresets.Create("llama", "tiny", seed: 0);
        using (model)
        using (var peft = new PeftModel(model, catalog))
        {
            var lm = (ICausalLM)model;
            using Tensor input = torch.arange(0, 16, dtype: ScalarType.Int64).reshape(2, 8);
            void Forward()
            {
                using (no_grad())
                using (Tensor logits = peft.Run(() => lm.Forward(input))) { }
            }
            peft.AddAdapter("default", LoraBenchmark.AdapterConfig());
            peft.SavePretrained(Path.Combine(dir.Path, "saved"));
            peft.DeleteAdapter("default");
            void Round()
            {
                peft.LoadAdapter(Path.Combine(dir.Path, "saved"), "default");
                Forward();
                peft.SavePretrained(Path.Combine(dir.Path, "again"));
                peft.DeleteAdapter("default");
            }
            Round(); // first loads (caches, lazily made tensors) before counting

            long before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
            for (int i = 0; i < 5; i++) Round();
            Assert.Equal(before, DisposeScopeManager.Statistics.ThreadTotalLiveCount);

            peft.LoadAdapter(Path.Combine(dir.Path, "saved"), "default");
            before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
            for (int i = 0; i < 4; i++)
            {
                PluginDirs.Copy(i % 2 == 0 ? PluginDirs.LoraAlt : Path.Combine(PluginDirs.Installed, "lora"), loraFolder);
                ReloadResult r = catalog.Reload(loraFolder);
                Assert.True(r.Succeeded, r.Error);
                Forward();
            }
            Assert.Equal(before, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
        }
    }
}
