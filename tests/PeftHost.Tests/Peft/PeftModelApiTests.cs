using System.Text.Json.Nodes;
using PeftHost.Abstractions.State;
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

    [Fact]
    public void Prompt_learning_parameters_are_listed_under_peft_names_and_counted_as_trainable()
    {
        using PluginCatalog catalog = Catalog();
        var model = new TwoBlocks();
        long baseTotal = model.parameters().Sum(p => p.numel());
        using var peft = new PeftModel(model, catalog);
        peft.AddAdapter("default", new JsonObject { ["peft_type"] = "PROMPT_TUNING", ["num_virtual_tokens"] = 3, ["token_dim"] = 8, ["num_transformer_submodules"] = 1 });
        var names = peft.NamedParameters().Where(p => !p.Name.StartsWith("base_model.model.", StringComparison.Ordinal)).ToList();
        Assert.Equal(["prompt_encoder.default.embedding.weight"], names.Select(p => p.Name));
        Assert.Equal([3L, 8], names[0].Parameter.shape);
        Assert.True(names[0].Parameter.requires_grad);
        // PEFT counts the virtual token embeddings: 3 x 8 trainable, on top of the frozen base.
        Assert.Equal((24L, baseTotal + 24), peft.TrainableParameterCounts());
    }

    [Fact]
    public void Only_the_active_adapter_trains_and_an_inference_mode_adapter_never_does()
    {
        // PEFT's rule, applied by the contract's base class for every method (here IA3, which once set its own flags).
        using PluginCatalog catalog = Catalog();
        var model = new OneLinear(8, 6);
        using var peft = new PeftModel(model, catalog);
        JsonObject Ia3(bool inference) => new() { ["peft_type"] = "IA3", ["target_modules"] = new JsonArray("linear"), ["inference_mode"] = inference };
        peft.AddAdapter("a", Ia3(inference: false));
        peft.AddAdapter("b", Ia3(inference: false));
        peft.AddAdapter("frozen", Ia3(inference: true));
        string[] Trainable() => peft.NamedParameters().Where(p => p.Parameter.requires_grad).Select(p => p.Name).Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(["base_model.model.linear.ia3_l.a"], Trainable());
        peft.SetActiveAdapters("b", "frozen");
        Assert.Equal(["base_model.model.linear.ia3_l.b"], Trainable());
        peft.DeleteAdapter("b");
        Assert.Empty(Trainable());
    }

    [Fact]
    public void A_method_whose_layers_cannot_merge_is_refused_before_anything_changes()
    {
        using var dir = PluginDirs.Scratch();
        PluginDirs.Copy(PluginDirs.Fixture("Faulty"), Path.Combine(dir.Path, "faulty"));
        using var catalog = new PluginCatalog(new PluginCatalogOptions { PluginsDirectory = dir.Path });
        catalog.Scan();
        var model = new TwoBlocks();
        using var x = torch.randn(3, 8);
        using var peft = new PeftModel(model, catalog);
        peft.AddAdapter("s", Configs.Faulty());
        using var before = peft.Forward(x);
        var e = Assert.Throws<NotSupportedException>(() => peft.Merge());
        Assert.Contains("FAULTY adapters (s) cannot be merged", e.Message);
        Assert.Empty(peft.MergedAdapters);
        using var after = peft.Forward(x);
        Assert.Equal(0.0, Tensors.MaxAbsDiff(before, after));
    }

    [Fact]
    public void Saving_with_a_conversion_is_refused_for_a_method_that_cannot_convert_naming_it()
    {
        using PluginCatalog catalog = Catalog();
        using var dir = new ScratchFolder();
        using var peft = new PeftModel(new OneLinear(8, 6), catalog);
        peft.AddAdapter("default", new JsonObject { ["peft_type"] = "IA3", ["target_modules"] = new JsonArray("linear") });
        using AdapterState initial = peft.ExportAdapter("default");
        var e = Assert.Throws<NotSupportedException>(() => peft.SavePretrained(dir.Path, convertFromInitial: initial));
        Assert.Contains("Adapter 'default' is IA3", e.Message);
        Assert.Empty(Directory.GetFileSystemEntries(dir.Path));
    }
}
