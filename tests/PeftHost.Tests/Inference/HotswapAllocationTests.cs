using PeftHost.Engine.Inference;
using PeftHost.Engine.Peft;
using PeftHost.Engine.Plugins;
using PeftHost.Models;
using PeftHost.Tests.Support;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace PeftHost.Tests.Inference;

public class HotswapAllocationTests
{
    [Fact]
    public void Hotswaps_leave_no_live_tensor_behind()
    {
        (_, nn.Module model) = ModelPresets.Create("llama", "tiny", seed: 0);
        using var catalog = new PluginCatalog(new PluginCatalogOptions { PluginsDirectory = PluginDirs.Installed, HotReload = false });
        catalog.Scan();
        using var dir = new ScratchFolder();
        using (var peft = new PeftModel(model, catalog))
        {
            peft.AddAdapter("default", LoraBenchmark.AdapterConfig());
            peft.SavePretrained(dir.Path);
            peft.PrepareForHotswap(16);
            peft.LoadAdapter(dir.Path, "default", hotswap: true);
            // Live handles of this thread: one left per swap (e.g. an undisposed wrapper from an in-place op) would show here.
            long before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
            for (int i = 0; i < 10; i++) peft.LoadAdapter(dir.Path, "default", hotswap: true);
            Assert.Equal(before, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
        }
        model.Dispose();
    }
}
