using System.Text.Json.Nodes;
using PeftHost.Abstractions.Config;
using PeftHost.Abstractions.Layers;
using PeftHost.Engine.Peft;
using PeftHost.Engine.Plugins;
using PeftHost.Tests.PeftReference;
using PeftHost.Tests.Support;
using Xunit;
using static TorchSharp.torch;

namespace PeftHost.Tests.Mixed;

/// <summary>
/// Where two methods would wrap one module incompatibly (docs/methods/mixed.md), the second adapter is refused with
/// the module, both methods and the reason, and the model is left exactly as it was.
/// </summary>
public class MixedRefusalTests
{
    // The first adapter, then one of another method on the same module, and words of the reason.
    public static TheoryData<string, string, string, string> Pairs => new()
    {
        { """{"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ["q_proj"]}""", """{"peft_type": "IA3", "target_modules": ["q_proj"], "feedforward_modules": []}""", "IA3", "never defined" },
        { """{"peft_type": "IA3", "target_modules": ["q_proj"], "feedforward_modules": []}""", """{"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ["q_proj"]}""", "IA3", "never defined" },
        { """{"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ["q_proj"]}""", """{"peft_type": "BOFT", "boft_block_size": 4, "boft_n_butterfly_factor": 1, "target_modules": ["q_proj"]}""", "BOFT", "silently dropped" },
        { """{"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ["q_proj"]}""", """{"peft_type": "BITFIT", "target_modules": ["q_proj"]}""", "BITFIT", "output would be dropped" },
        { """{"peft_type": "BOTTLENECK", "adapter_size": 4, "target_modules": ["q_proj"]}""", """{"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ["q_proj"]}""", "BOTTLENECK", "nonlinear" },
    };

    [Theory]
    [MemberData(nameof(Pairs))]
    public void A_second_method_that_cannot_nest_is_refused_naming_module_methods_and_reason(string first, string second, string refusedMethod, string reasonWords)
    {
        using PluginCatalog catalog = PeftCase.Catalog();
        using var model = new TwoBlocks();
        using var peft = new PeftModel(model, catalog);
        peft.AddAdapter("one", JsonNode.Parse(first)!.AsObject());
        manual_seed(5);
        using Tensor x = randn(3, 8);
        using Tensor before = Forward(model, x);
        int layers = model.modules().OfType<TunerLayer>().Count();

        var e = Assert.ThrowsAny<Exception>(() => peft.AddAdapter("two", JsonNode.Parse(second)!.AsObject()));
        Assert.True(e is TunerConfigException, $"expected a TunerConfigException, got {e.GetType().Name}: {e.Message}");
        string firstType = JsonNode.Parse(first)!["peft_type"]!.GetValue<string>(), secondType = JsonNode.Parse(second)!["peft_type"]!.GetValue<string>();
        Assert.Contains("'layers.0.q_proj'", e.Message);
        Assert.Contains(firstType, e.Message);
        Assert.Contains(secondType, e.Message);
        Assert.Contains(refusedMethod, e.Message);
        Assert.Contains(reasonWords, e.Message);

        // Nothing half-applied.
        Assert.Equal(["one"], peft.Adapters);
        Assert.Equal(layers, model.modules().OfType<TunerLayer>().Count());
        using Tensor after = Forward(model, x);
        Assert.Equal(0, Tensors.MaxAbsDiff(before, after));
    }

    [Fact]
    public void BitFit_and_oft_on_one_module_are_refused_in_either_order()
    {
        using PluginCatalog catalog = PeftCase.Catalog();
        using var model = new TwoBlocks();
        const string bitfit = """{"peft_type": "BITFIT", "target_modules": ["q_proj"]}""";
        const string oft = """{"peft_type": "OFT", "r": 2, "target_modules": ["q_proj"]}""";
        // BitFit inside: OFT would rotate its trained bias; BitFit outside: it computes the output itself and would drop OFT's.
        foreach ((string first, string second, string reason) in new[] { (bitfit, oft, "trained bias would be rotated"), (oft, bitfit, "output would be dropped") })
        {
            using var peft = new PeftModel(model, catalog);
            peft.AddAdapter("one", JsonNode.Parse(first)!.AsObject());
            var e = Assert.Throws<TunerConfigException>(() => peft.AddAdapter("two", JsonNode.Parse(second)!.AsObject()));
            Assert.Contains("'layers.0.q_proj'", e.Message);
            Assert.Contains("BITFIT", e.Message);
            Assert.Contains("OFT", e.Message);
            Assert.Contains(reason, e.Message);
        }
        Assert.Empty(model.modules().OfType<TunerLayer>());
    }

    private static Tensor Forward(nn.Module<Tensor, Tensor> model, Tensor x)
    {
        using (no_grad()) return model.forward(x);
    }

    [Fact]
    public void Weighted_combination_of_two_methods_is_refused_as_in_peft()
    {
        var c = new PeftCase("mixed_lora_loha_same");
        using PluginCatalog catalog = PeftCase.Catalog();
        using nn.Module model = c.LoadBase();
        using PeftModel peft = PeftModel.FromPretrained(model, Path.Combine(c.Folder, "adapter_one"), catalog, adapterName: "one");
        peft.LoadAdapter(Path.Combine(c.Folder, "adapter_two"), "two");
        // PEFT 0.13.2's mixed model refuses add_weighted_adapter (mixed_refusals); so do we, with the reason.
        Assert.True(new PeftCase("mixed_refusals").Meta["refusals"]!["add_weighted_adapter"]!["refused"]!.GetValue<bool>());
        var e = Assert.Throws<ArgumentException>(() => peft.AddWeightedAdapter(["one", "two"], [0.5, 0.5], "both", "linear"));
        Assert.Contains("one method", e.Message);
    }
}
