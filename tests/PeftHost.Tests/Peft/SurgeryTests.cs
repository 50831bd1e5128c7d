using PeftHost.Abstractions.Surgery;
using PeftHost.Engine.Peft;
using PeftHost.Engine.Plugins;
using PeftHost.Tests.Support;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace PeftHost.Tests;

public class SurgeryTests
{
    [Fact]
    public void Lora_on_a_users_own_module_wraps_the_field_and_detach_restores_it_exactly()
    {
        using var catalog = new PluginCatalog(new PluginCatalogOptions { PluginsDirectory = PluginDirs.Installed });
        catalog.Scan();
        var model = new OneLinear();
        using var x = torch.randn(4, 8);
        using var baseOut = model.forward(x);
        var peft = new PeftModel(model, catalog);
        peft.AddAdapter("default", Configs.Lora("linear"));

        Assert.Equal(["linear", "linear.base_layer", "linear.lora_A", "linear.lora_A.default", "linear.lora_B", "linear.lora_B.default", "linear.lora_dropout", "linear.lora_dropout.default"],
            model.named_modules().Select(m => m.name).Where(n => n.Length > 0).Order(StringComparer.Ordinal).ToArray());
        var trainable = model.named_parameters().Where(p => p.parameter.requires_grad).Select(p => p.name).ToArray();
        Assert.Equal(["linear.lora_A.default.weight", "linear.lora_B.default.weight"], trainable);
        using var adapted = peft.Forward(x);
        Assert.True(Tensors.MaxAbsDiff(adapted, baseOut) > 1e-4);

        // The forward really goes through the wrapper: it equals base + B A x * alpha / r.
        using (no_grad())
        {
            var p = model.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter);
            using Tensor expected = baseOut + x.matmul(p["linear.lora_A.default.weight"].t()).matmul(p["linear.lora_B.default.weight"].t()) * (4.0 / 2.0);
            Assert.True(Tensors.MaxAbsDiff(adapted, expected) < 1e-5);
        }

        peft.Dispose();
        Assert.Equal(["linear"], model.named_modules().Select(m => m.name).Where(n => n.Length > 0).ToArray());
        using var restored = model.forward(x);
        Assert.Equal(0.0, Tensors.MaxAbsDiff(restored, baseOut));
    }

    [Fact]
    public void Modules_inside_a_module_list_are_replaced_and_restored()
    {
        var model = new TwoBlocks();
        var surgeon = new ModelSurgeon(model);
        using var x = torch.randn(2, 8);
        using var before = model.forward(x);
        var e = Assert.Throws<ModelSurgeryException>(() => surgeon.Replace("layers.1", new Scale(surgeon.Get("layers.1"))));
        Assert.Contains("the ModuleList holds Block items", e.Message);
        var wrapper = new Scale(surgeon.Get("layers.1.q_proj"));
        surgeon.Replace("layers.1.q_proj", wrapper);
        Assert.Same(wrapper, surgeon.Get("layers.1.q_proj"));
        using var scaled = model.forward(x);
        Assert.True(Tensors.MaxAbsDiff(scaled, before) > 1e-4);
        surgeon.RestoreAll();
        using var after = model.forward(x);
        Assert.Equal(0.0, Tensors.MaxAbsDiff(after, before));
    }

    [Fact]
    public void A_field_typed_as_a_sealed_module_is_refused_with_the_reason()
    {
        var model = new TypedField();
        var surgeon = new ModelSurgeon(model);
        var e = Assert.Throws<ModelSurgeryException>(() => surgeon.Replace("linear", new Scale(surgeon.Get("linear"))));
        Assert.Contains("field 'linear' of TypedField is declared as Linear", e.Message);
        Assert.Contains("Module<Tensor, Tensor>", e.Message);
    }

    [Fact]
    public void A_missing_path_names_the_nearest_parent_and_its_children()
    {
        var surgeon = new ModelSurgeon(new TwoBlocks());
        var e = Assert.Throws<ModelSurgeryException>(() => surgeon.Get("layers.0.k_proj"));
        Assert.Contains("'layers.0' has no child 'k_proj'", e.Message);
        Assert.Contains("q_proj", e.Message);
    }

    [Fact]
    public void A_second_adapter_joins_the_layers_of_the_first()
    {
        using var catalog = new PluginCatalog(new PluginCatalogOptions { PluginsDirectory = PluginDirs.Installed });
        catalog.Scan();
        var model = new TwoBlocks();
        using var peft = new PeftModel(model, catalog);
        peft.AddAdapter("a", Configs.Lora("q_proj"));
        peft.AddAdapter("b", Configs.Lora("q_proj", "v_proj"));
        var names = model.named_parameters().Select(p => p.name).ToHashSet();
        Assert.Contains("layers.0.q_proj.lora_A.a.weight", names);
        Assert.Contains("layers.0.q_proj.lora_A.b.weight", names);
        Assert.Contains("layers.1.v_proj.lora_B.b.weight", names);
        peft.DeleteAdapter("b");
        Assert.DoesNotContain(model.named_parameters(), p => p.name.Contains(".b.") || p.name.Contains("v_proj.base_layer"));
    }

    [Fact]
    public void Targets_that_match_nothing_are_a_clear_error_and_nothing_is_applied()
    {
        using var catalog = new PluginCatalog(new PluginCatalogOptions { PluginsDirectory = PluginDirs.Installed });
        catalog.Scan();
        var model = new TwoBlocks();
        using var peft = new PeftModel(model, catalog);
        var e = Assert.Throws<PeftHost.Abstractions.Config.TunerConfigException>(() => peft.AddAdapter("x", Configs.Lora("k_proj")));
        Assert.Contains("target_modules [k_proj] matched no module", e.Message);
        Assert.Contains("layers.0.q_proj", e.Message);
        Assert.Empty(peft.Adapters);
    }

    private sealed class Scale(nn.Module inner) : nn.Module<Tensor, Tensor>("Scale")
    {
        private readonly nn.Module<Tensor, Tensor> _inner = (nn.Module<Tensor, Tensor>)inner;
        public override Tensor forward(Tensor x) => _inner.forward(x) * 2;
    }

    private sealed class TypedField : nn.Module<Tensor, Tensor>
    {
        private readonly TorchSharp.Modules.Linear linear = nn.Linear(4, 4);
        public TypedField() : base(nameof(TypedField)) => RegisterComponents();
        public override Tensor forward(Tensor x) => linear.forward(x);
    }
}
