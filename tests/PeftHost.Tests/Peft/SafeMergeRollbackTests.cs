using PeftHost.Engine.Peft;
using PeftHost.Engine.Plugins;
using PeftHost.Tests.Support;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace PeftHost.Tests;

public class SafeMergeRollbackTests
{
    [Fact]
    public void A_safe_merge_that_finds_nan_undoes_only_its_own_merges()
    {
        using var catalog = new PluginCatalog(new PluginCatalogOptions { PluginsDirectory = PluginDirs.Installed });
        catalog.Scan();
        var model = new TwoBlocks();
        using var x = torch.randn(3, 8);
        using var peft = new PeftModel(model, catalog);
        peft.AddAdapter("a", Configs.Lora("q_proj"));
        peft.AddAdapter("b", Configs.Lora("q_proj"));
        peft.SetActiveAdapters("a");
        using var withA = peft.Forward(x);
        peft.Merge(["a"], safeMerge: true);

        // Break adapter b in the second layer only: the first layer merges b before the second finds the NaN.
        using (no_grad())
            peft.NamedParameters().Single(p => p.Name == "base_model.model.layers.1.q_proj.lora_B.b.weight").Parameter.fill_(double.NaN);
        using var weightsBefore = peft.NamedParameters().Single(p => p.Name == "base_model.model.layers.0.q_proj.base_layer.weight").Parameter.clone();
        var e = Assert.Throws<InvalidDataException>(() => peft.Merge(["b"], safeMerge: true));
        Assert.Contains("NaNs or Infs detected", e.Message);
        Assert.Contains("'b'", e.Message);

        Assert.Equal(["a"], peft.MergedAdapters);
        using var weightsAfter = peft.NamedParameters().Single(p => p.Name == "base_model.model.layers.0.q_proj.base_layer.weight").Parameter;
        Assert.True(Tensors.MaxAbsDiff(weightsBefore, weightsAfter) < 1e-6);
        using var stillA = peft.Forward(x);
        Assert.True(Tensors.MaxAbsDiff(withA, stillA) < 1e-5);
    }
}
