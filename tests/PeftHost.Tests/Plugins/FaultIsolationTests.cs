using PeftHost.Abstractions.Layers;
using PeftHost.Engine.Peft;
using PeftHost.Engine.Plugins;
using PeftHost.Tests.Support;
using TorchSharp;
using Xunit;

namespace PeftHost.Tests;

public class FaultIsolationTests
{
    private static (ScratchFolder, PluginCatalog) Catalog()
    {
        var dir = PluginDirs.Scratch("lora");
        PluginDirs.Copy(PluginDirs.Fixture("Faulty"), Path.Combine(dir.Path, "faulty"));
        var catalog = new PluginCatalog(new PluginCatalogOptions { PluginsDirectory = dir.Path });
        catalog.Scan();
        return (dir, catalog);
    }

    [Fact]
    public void A_fault_during_apply_names_the_plugin_and_leaves_the_model_as_it_was()
    {
        (ScratchFolder dir, PluginCatalog catalog) = Catalog();
        using (dir) using (catalog)
        {
            var model = new TwoBlocks();
            using var peft = new PeftModel(model, catalog);
            using var x = torch.randn(2, 8);
            using var baseOut = model.forward(x);
            var e = Assert.Throws<PluginFaultException>(() => peft.AddAdapter("bad", Configs.Faulty("apply")));
            Assert.Contains("Plugin 'faulty'", e.Message);
            Assert.Contains("during apply", e.Message);
            Assert.Contains("fixture apply failure", e.Message);
            Assert.DoesNotContain(model.modules(), m => m is TunerLayer);
            Assert.Empty(peft.Adapters);
            using var y = peft.Forward(x);
            Assert.Equal(0.0, Tensors.MaxAbsDiff(baseOut, y));
            peft.AddAdapter("ok", Configs.Lora("q_proj")); // still usable
        }
    }

    [Fact]
    public void A_fault_during_forward_names_the_plugin_and_the_model_stays_usable()
    {
        (ScratchFolder dir, PluginCatalog catalog) = Catalog();
        using (dir) using (catalog)
        {
            var model = new TwoBlocks();
            using var peft = new PeftModel(model, catalog);
            using var x = torch.randn(2, 8);
            using var baseOut = model.forward(x);
            peft.AddAdapter("bad", Configs.Faulty("forward"));
            var e = Assert.Throws<PluginFaultException>(() => peft.Forward(x));
            Assert.Equal("faulty", e.PluginId);
            Assert.Equal("forward", e.Operation);
            peft.DeleteAdapter("bad");
            using var y = peft.Forward(x);
            Assert.Equal(0.0, Tensors.MaxAbsDiff(baseOut, y));
        }
    }

    [Fact]
    public void A_fault_during_state_export_names_the_plugin()
    {
        (ScratchFolder dir, PluginCatalog catalog) = Catalog();
        using (dir) using (catalog)
        {
            using var peft = new PeftModel(new TwoBlocks(), catalog);
            peft.AddAdapter("bad", Configs.Faulty("export"));
            var e = Assert.Throws<PluginFaultException>(() => peft.ExportAdapter("bad"));
            Assert.Contains("during export", e.Message);
            // A reload of that plugin cannot snapshot it: it fails cleanly and the old version keeps serving.
            ReloadResult r = catalog.Reload(Path.Combine(dir.Path, "faulty"));
            Assert.False(r.Succeeded);
            Assert.Contains("export", r.Error);
            Assert.Equal(["bad"], peft.Adapters);
        }
    }

    [Fact]
    public void Unknown_peft_type_in_a_config_is_a_clear_error_and_nothing_is_applied()
    {
        (ScratchFolder dir, PluginCatalog catalog) = Catalog();
        using (dir) using (catalog)
        {
            var model = new TwoBlocks();
            using var peft = new PeftModel(model, catalog);
            var e = Assert.Throws<KeyNotFoundException>(() => peft.AddAdapter("x", new System.Text.Json.Nodes.JsonObject { ["peft_type"] = "NO_SUCH_METHOD" }));
            Assert.Contains("NO_SUCH_METHOD", e.Message);
            Assert.DoesNotContain(model.modules(), m => m is TunerLayer);
        }
    }
}
