using System.Text.Json.Nodes;
using PeftHost.Abstractions.State;
using PeftHost.Abstractions.Tuning;
using PeftHost.Engine.Peft;
using PeftHost.Engine.Plugins;
using PeftHost.Tests.Support;
using Xunit;
using static TorchSharp.torch;

namespace PeftHost.Tests;

/// <summary>
/// Adapter names become segments of parameter paths: names that would collide are refused with the
/// reason, and an adapter's tensors are found by the layer's containers, never by parsing names.
/// </summary>
public class AdapterNameTests
{
    private static PluginCatalog Catalog()
    {
        var catalog = new PluginCatalog(new PluginCatalogOptions { PluginsDirectory = PluginDirs.Installed, HotReload = false });
        catalog.Scan();
        return catalog;
    }

    [Theory]
    [InlineData("weight", "already the name of a parameter or module")]
    [InlineData("bias", "already the name of a parameter or module")]
    [InlineData("base_layer", "already the name of a parameter or module")]
    [InlineData("__base__", "means the base model in mixed batches")]
    [InlineData("a.b", "contains '.'")]
    [InlineData(" ", "it is empty")]
    [InlineData("", "it is empty")]
    public void A_colliding_adapter_name_is_refused_with_the_reason_and_nothing_is_applied(string name, string reason)
    {
        using PluginCatalog catalog = Catalog();
        var model = new TwoBlocks();
        using var peft = new PeftModel(model, catalog);
        var e = Assert.Throws<ArgumentException>(() => peft.AddAdapter(name, Configs.Lora("q_proj")));
        Assert.Contains($"Adapter name '{name}' is invalid", e.Message);
        Assert.Contains(reason, e.Message);
        Assert.Empty(peft.Adapters);
        Assert.DoesNotContain(model.named_modules(), m => m.name.Contains("lora_", StringComparison.Ordinal));
    }

    [Fact]
    public void Every_tuner_refuses_an_adapter_named_weight_and_so_does_loading_one()
    {
        using PluginCatalog catalog = Catalog();
        using var saved = new ScratchFolder();
        using (var source = new PeftModel(new TwoBlocks(), catalog))
        {
            source.AddAdapter("default", Configs.Lora("q_proj"));
            source.SavePretrained(saved.Path);
        }
        using var peft = new PeftModel(new TwoBlocks(), catalog);
        Assert.Contains("'weight' is invalid", Assert.Throws<ArgumentException>(() => peft.LoadAdapter(saved.Path, "weight")).Message);

        // The tuners themselves, as the host's rule is the contract's (a plugin used without the host).
        foreach ((string peftType, JsonObject config) in new[]
        {
            ("IA3", new JsonObject { ["peft_type"] = "IA3", ["target_modules"] = new JsonArray("q_proj") }),
            ("PROMPT_TUNING", new JsonObject { ["peft_type"] = "PROMPT_TUNING", ["num_virtual_tokens"] = 2, ["token_dim"] = 8, ["num_transformer_submodules"] = 1 }),
        })
        {
            ITuner tuner = catalog.GetTuner(peftType);
            using ITunerModel attached = tuner.Attach(new PeftHost.Abstractions.Surgery.ModelSurgeon(new TwoBlocks()), new TunerContext(Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance));
            var e = Assert.Throws<ArgumentException>(() => attached.AddAdapter("weight", tuner.ParseConfig(config)));
            Assert.Contains("'weight' is invalid", e.Message);
        }
    }

    [Fact]
    public void Adapters_whose_names_are_parts_of_parameter_paths_keep_their_own_tensors()
    {
        // With the adapter name found by splitting parameter paths, an adapter named "lora_A" took
        // "lora_A.default.weight" of adapter "default" for its own; the layers' containers tell them apart.
        using PluginCatalog catalog = Catalog();
        var model = new OneLinear(8, 6);
        using var peft = new PeftModel(model, catalog);
        peft.AddAdapter("default", Configs.Lora("linear"));
        JsonObject wider = Configs.Lora("linear");
        wider["r"] = 3;
        peft.AddAdapter("lora_A", wider);

        using AdapterState first = peft.ExportAdapter("default");
        using AdapterState second = peft.ExportAdapter("lora_A");
        Assert.Equal(["linear.lora_A.weight", "linear.lora_B.weight"], first.Tensors.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(["linear.lora_A.weight", "linear.lora_B.weight"], second.Tensors.Keys.Order(StringComparer.Ordinal));
        Assert.Equal([2L, 8], first.Tensors["linear.lora_A.weight"].shape);
        Assert.Equal([3L, 8], second.Tensors["linear.lora_A.weight"].shape);
        var live = peft.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter);
        Assert.Equal(0.0, Tensors.MaxAbsDiff(first.Tensors["linear.lora_B.weight"], live["base_model.model.linear.lora_B.default.weight"]));
        Assert.Equal(0.0, Tensors.MaxAbsDiff(second.Tensors["linear.lora_B.weight"], live["base_model.model.linear.lora_B.lora_A.weight"]));

        // Deleting one leaves the other whole.
        peft.DeleteAdapter("default");
        using AdapterState left = peft.ExportAdapter("lora_A");
        Assert.Equal(2, left.Tensors.Count);
        Assert.Equal([3L, 8], left.Tensors["linear.lora_A.weight"].shape);
    }
}
