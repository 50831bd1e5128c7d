using PeftHost.Engine.Peft;
using PeftHost.Engine.Plugins;
using PeftHost.Tests.Support;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace PeftHost.Tests;

public class PeftModelApiTests
{
    private static PluginCatalog Catalog()
    {
        var catalog = new PluginCatalog(new PluginCatalogOptions { PluginsDirectory = PluginDirs.Installed });
        catalog.Scan();
        return catalog;
    }

    [Fact]
    public void Parameters_are_named_as_peft_names_them_and_only_adapter_ones_train()
    {
        using PluginCatalog catalog = Catalog();
        using var peft = new PeftModel(new OneLinear(8, 6), catalog);
        peft.AddAdapter("default", Configs.Lora("linear"));
        var names = peft.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter);
        Assert.Equal(["base_model.model.linear.base_layer.bias", "base_model.model.linear.base_layer.weight",
                      "base_model.model.linear.lora_A.default.weight", "base_model.model.linear.lora_B.default.weight"], names.Keys.Order(StringComparer.Ordinal).ToArray());
        Assert.Equal(["base_model.model.linear.lora_A.default.weight", "base_model.model.linear.lora_B.default.weight"],
            names.Where(p => p.Value.requires_grad).Select(p => p.Key).Order(StringComparer.Ordinal).ToArray());
        // 6x8 weight + 6 bias = 54 base; A 2x8 + B 6x2 = 28 trainable; 28 / 82 = 34.1463 %.
        Assert.Equal("trainable params: 28 || all params: 82 || trainable%: 34.1463", peft.PrintTrainableParameters());
    }

    [Fact]
    public void Disable_adapter_scope_gives_the_base_output_and_restores_after()
    {
        using PluginCatalog catalog = Catalog();
        var model = new TwoBlocks();
        using var x = torch.randn(3, 8);
        using var baseOut = model.forward(x);
        using var peft = new PeftModel(model, catalog);
        peft.AddAdapter("default", Configs.Lora("q_proj", "v_proj"));
        using var adapted = peft.Forward(x);
        using (peft.DisableAdapter())
        {
            using var inside = peft.Forward(x);
            Assert.Equal(0.0, Tensors.MaxAbsDiff(inside, baseOut));
        }
        using var after = peft.Forward(x);
        Assert.Equal(0.0, Tensors.MaxAbsDiff(after, adapted));
    }

    [Fact]
    public void Several_active_adapters_add_up_and_set_adapter_switches()
    {
        using PluginCatalog catalog = Catalog();
        var model = new OneLinear(8, 6);
        using var x = torch.randn(4, 8);
        using var baseOut = model.forward(x);
        using var peft = new PeftModel(model, catalog);
        peft.AddAdapter("a", Configs.Lora("linear"));
        peft.AddAdapter("b", Configs.Lora("linear"));
        Assert.Equal(["a"], peft.ActiveAdapters);
        using var onlyA = peft.Forward(x);
        peft.SetActiveAdapters("b");
        using var onlyB = peft.Forward(x);
        peft.SetActiveAdapters("a", "b");
        using var both = peft.Forward(x);
        // LoRA deltas are additive on one linear layer: both = a + b - base.
        using var expected = onlyA + onlyB - baseOut;
        Assert.True(Tensors.MaxAbsDiff(both, expected) < 1e-5);
        Assert.Throws<KeyNotFoundException>(() => peft.SetActiveAdapters("c"));
    }

    [Fact]
    public void Mixed_batch_routes_each_row_to_its_adapter_or_the_base()
    {
        using PluginCatalog catalog = Catalog();
        var model = new TwoBlocks();
        using var x = torch.randn(3, 8);
        using var baseOut = model.forward(x);
        using var peft = new PeftModel(model, catalog);
        peft.AddAdapter("a", Configs.Lora("q_proj"));
        peft.AddAdapter("b", Configs.Lora("v_proj"));
        peft.SetActiveAdapters("a");
        using var withA = peft.Forward(x);
        peft.SetActiveAdapters("b");
        using var withB = peft.Forward(x);

        using var mixed = peft.Forward(x, ["a", "__base__", "b"]);
        Assert.True(Tensors.MaxAbsDiff(mixed[0], withA[0]) < 1e-6);
        Assert.True(Tensors.MaxAbsDiff(mixed[1], baseOut[1]) < 1e-6);
        Assert.True(Tensors.MaxAbsDiff(mixed[2], withB[2]) < 1e-6);

        var e = Assert.Throws<KeyNotFoundException>(() => peft.Forward(x, ["a", "zzz", "b"]));
        Assert.Contains("'zzz'", e.Message);
    }

    [Fact]
    public void Delete_adapter_restores_unused_modules_and_unload_returns_the_plain_model()
    {
        using PluginCatalog catalog = Catalog();
        var model = new TwoBlocks();
        using var x = torch.randn(3, 8);
        using var baseOut = model.forward(x);
        var peft = new PeftModel(model, catalog);
        peft.AddAdapter("a", Configs.Lora("q_proj"));
        peft.AddAdapter("b", Configs.Lora("v_proj"));
        peft.DeleteAdapter("b");
        Assert.Equal(["a"], peft.Adapters);
        Assert.DoesNotContain(model.named_modules(), m => m.name.StartsWith("layers.0.v_proj.", StringComparison.Ordinal));
        nn.Module plain = peft.Unload();
        Assert.Same(model, plain);
        Assert.Empty(peft.Adapters);
        using var y = model.forward(x);
        Assert.Equal(0.0, Tensors.MaxAbsDiff(y, baseOut));
        peft.Dispose();
    }
}
