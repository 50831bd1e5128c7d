using System.Text.Json.Nodes;
using PeftHost.Abstractions.Layers;
using PeftHost.Engine.Peft;
using PeftHost.Engine.Plugins;
using PeftHost.Tests.PeftReference;
using PeftHost.Tests.Support;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace PeftHost.Tests.Mixed;

/// <summary>
/// The nesting formulas of docs/methods/mixed.md on a module with a bias (PEFT's mixed_* cases use Llama, which has
/// none), each method's own output taken from the same layers with only its adapter active: additive methods add
/// their deltas, y = y_one + y_two − y_base; OFT outside rotates the inner output around the original bias,
/// y = (y_one − b) R + b; LoRA outside OFT adds its delta to the rotated output, y = y_two + (y_one − y_base).
/// Merging gives the same numbers; a hot reload of the inner method's plugin keeps the nesting order.
/// </summary>
public class MixedFormulaTests
{
    private const string Path0 = "layers.0.q_proj";

    private static JsonObject Lora() => Configs.Lora("q_proj");

    private static JsonObject Loha() => new() { ["peft_type"] = "LOHA", ["r"] = 2, ["alpha"] = 4, ["target_modules"] = new JsonArray("q_proj"), ["init_weights"] = false };

    private static JsonObject Oft() => new() { ["peft_type"] = "OFT", ["r"] = 2, ["target_modules"] = new JsonArray("q_proj"), ["init_weights"] = false };

    [Fact]
    public void Lora_then_loha_adds_both_deltas()
    {
        (Tensor mixed, Tensor one, Tensor two, Tensor baseOut, _, _) = Outputs(Lora(), Loha());
        using (mixed) using (one) using (two) using (baseOut)
        using (Tensor expected = one + two - baseOut)
            Assert.True(Tensors.MaxAbsDiff(mixed, expected) < 1e-5, $"max diff {Tensors.MaxAbsDiff(mixed, expected)}");
    }

    [Theory]
    [InlineData("LOKR")]
    [InlineData("ADALORA")]
    [InlineData("VERA")]
    [InlineData("FOURIERFT")]
    public void Another_additive_method_around_lora_adds_its_delta(string peftType)
    {
        JsonObject second = peftType switch
        {
            "LOKR" => new() { ["peft_type"] = "LOKR", ["r"] = 2, ["alpha"] = 4, ["target_modules"] = new JsonArray("q_proj"), ["init_weights"] = false },
            "ADALORA" => new() { ["peft_type"] = "ADALORA", ["init_r"] = 2, ["target_r"] = 2, ["total_step"] = 10, ["target_modules"] = new JsonArray("q_proj"), ["init_lora_weights"] = false },
            "VERA" => new() { ["peft_type"] = "VERA", ["r"] = 2, ["target_modules"] = new JsonArray("q_proj"), ["init_weights"] = false },
            _ => new() { ["peft_type"] = "FOURIERFT", ["n_frequency"] = 4, ["scaling"] = 10.0, ["target_modules"] = new JsonArray("q_proj"), ["init_weights"] = false },
        };
        (Tensor mixed, Tensor one, Tensor two, Tensor baseOut, _, _) = Outputs(Lora(), second);
        using (mixed) using (one) using (two) using (baseOut)
        using (Tensor expected = one + two - baseOut)
        {
            Assert.True(Tensors.MaxAbsDiff(two, baseOut) > 1e-4, $"{peftType}: the adapter does not change the output");
            Assert.True(Tensors.MaxAbsDiff(mixed, expected) < 1e-5, $"{peftType}: max diff {Tensors.MaxAbsDiff(mixed, expected)}");
        }
    }

    [Fact]
    public void Oft_outside_lora_rotates_the_lora_adapted_output_around_the_original_bias()
    {
        (Tensor mixed, Tensor one, Tensor two, Tensor baseOut, Tensor weight, Tensor bias) = Outputs(Lora(), Oft());
        using (mixed) using (one) using (two) using (baseOut) using (weight) using (bias)
        {
            // OFT alone: y_two = (x Wᵀ) R + b, so R = (x Wᵀ)⁻¹ (y_two − b) on a square, invertible x Wᵀ.
            using Tensor r = linalg.solve(baseOut - bias, two - bias);
            using Tensor expected = (one - bias).matmul(r) + bias;
            Assert.True(Tensors.MaxAbsDiff(mixed, expected) < 1e-4, $"max diff {Tensors.MaxAbsDiff(mixed, expected)}");
            // The order matters: LoRA's delta added after the rotation is another function.
            using Tensor otherOrder = two + (one - baseOut);
            Assert.True(Tensors.MaxAbsDiff(mixed, otherOrder) > 1e-3);
        }
    }

    [Fact]
    public void Lora_outside_oft_adds_its_delta_to_the_rotated_output()
    {
        (Tensor mixed, Tensor one, Tensor two, Tensor baseOut, _, _) = Outputs(Oft(), Lora());
        using (mixed) using (one) using (two) using (baseOut)
        using (Tensor expected = one + (two - baseOut))
            Assert.True(Tensors.MaxAbsDiff(mixed, expected) < 1e-5, $"max diff {Tensors.MaxAbsDiff(mixed, expected)}");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Merged_equals_unmerged_in_either_order(bool oftFirst)
    {
        using PluginCatalog catalog = PeftCase.Catalog();
        using var model = new TwoBlocks();
        using var peft = new PeftModel(model, catalog);
        peft.AddAdapter("one", oftFirst ? Oft() : Lora());
        peft.AddAdapter("two", oftFirst ? Lora() : Oft());
        peft.SetActiveAdapters("one", "two");
        manual_seed(7);
        using Tensor x = randn(4, 8);
        using Tensor unmerged = Forward(model, x);
        peft.Merge();
        using (Tensor merged = Forward(model, x))
            Assert.True(Tensors.MaxAbsDiff(merged, unmerged) < 1e-5, $"max diff {Tensors.MaxAbsDiff(merged, unmerged)}");
        peft.Unmerge();
        using (Tensor again = Forward(model, x))
            Assert.True(Tensors.MaxAbsDiff(again, unmerged) < 1e-5);
    }

    [Fact]
    public void Reloading_the_inner_methods_plugin_keeps_the_nesting_and_the_numbers()
    {
        using var dir = PluginDirs.Scratch("lora", "oft");
        using var catalog = new PluginCatalog(new PluginCatalogOptions { PluginsDirectory = dir.Path });
        catalog.Scan();
        using var model = new TwoBlocks();
        using var peft = new PeftModel(model, catalog);
        peft.AddAdapter("one", Lora());
        peft.AddAdapter("two", Oft());
        peft.SetActiveAdapters("one", "two");
        manual_seed(8);
        using Tensor x = randn(4, 8);
        using Tensor before = Forward(model, x);

        PluginDirs.Copy(PluginDirs.LoraAlt, Path.Combine(dir.Path, "lora"));
        ReloadResult result = catalog.Reload(Path.Combine(dir.Path, "lora"));

        Assert.True(result.Succeeded, result.Error);
        Assert.Contains(result.NewVersion!, peft.PluginOf("one"));
        var outer = (TunerLayer)model.named_modules().Single(m => m.name == Path0).module;
        Assert.Equal("OFT", outer.PeftType);
        Assert.Equal("LORA", ((TunerLayer)outer.BaseLayer).PeftType);
        Assert.Equal(["one", "two"], peft.ActiveAdapters);
        using Tensor after = Forward(model, x);
        Assert.Equal(0.0, Tensors.MaxAbsDiff(before, after));
    }

    // The q_proj of block 0 on x = 8 random rows: both adapters active, each alone, none; and the original weight and bias.
    private static (Tensor Mixed, Tensor One, Tensor Two, Tensor Base, Tensor Weight, Tensor Bias) Outputs(JsonObject first, JsonObject second)
    {
        using PluginCatalog catalog = PeftCase.Catalog();
        using var model = new TwoBlocks();
        using var peft = new PeftModel(model, catalog);
        peft.AddAdapter("one", first);
        peft.AddAdapter("two", second);
        var layer = (TunerLayer)model.named_modules().Single(m => m.name == Path0).module;
        Assert.Equal(second["peft_type"]!.GetValue<string>(), layer.PeftType);
        Assert.Equal(first["peft_type"]!.GetValue<string>(), ((TunerLayer)layer.BaseLayer).PeftType);
        var linear = (TorchSharp.Modules.Linear)layer.GetBaseLayer();
        manual_seed(6);
        using Tensor x = randn(8, 8);
        peft.SetActiveAdapters("one", "two");
        Tensor mixed = Forward(layer, x);
        peft.SetActiveAdapters("one");
        Tensor one = Forward(layer, x);
        peft.SetActiveAdapters("two");
        Tensor two = Forward(layer, x);
        Tensor baseOut;
        using (peft.DisableAdapter()) baseOut = Forward(layer, x);
        return (mixed, one, two, baseOut, linear.weight!.detach().clone(), linear.bias!.detach().clone());
    }

    private static Tensor Forward(nn.Module<Tensor, Tensor> module, Tensor x)
    {
        using (no_grad()) return module.forward(x);
    }
}
