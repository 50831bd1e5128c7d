using System.Text.Json.Nodes;
using PeftHost.Abstractions.State;
using PeftHost.Abstractions.Tuning;
using PeftHost.Tests.Support;
using TorchSharp;
using Xunit;
using static PeftHost.Tests.Lora.LoraHarness;
using static TorchSharp.torch;

namespace PeftHost.Tests.Lora;

/// <summary>Export keys (PEFT's, adapter name removed) and import checks.</summary>
public class LoraStateTests
{
    [Fact]
    public void Export_uses_peft_keys_for_linear_conv1d_embedding_and_dora()
    {
        var model = new TinyLm();
        using ITunerModel tuner = Apply(model, Config(("target_modules", List("embed", "layers.0.q_proj", "layers.1.c_fc")), ("r", 2), ("use_dora", true)));
        using AdapterState state = tuner.ExportAdapter("default");
        Assert.Equal(
        [
            "embed.lora_embedding_A", "embed.lora_embedding_B", "embed.lora_magnitude_vector",
            "layers.0.q_proj.lora_A.weight", "layers.0.q_proj.lora_B.weight", "layers.0.q_proj.lora_magnitude_vector",
            "layers.1.c_fc.lora_A.weight", "layers.1.c_fc.lora_B.weight", "layers.1.c_fc.lora_magnitude_vector",
        ], state.Tensors.Keys.Order(StringComparer.Ordinal));
        Assert.Equal([6L], state.Tensors["embed.lora_magnitude_vector"].shape);
        Assert.Equal([6L], state.Tensors["layers.1.c_fc.lora_magnitude_vector"].shape);
        Assert.Equal("LORA", state.PeftType);
    }

    [Fact]
    public void Import_with_a_wrong_shape_names_the_tensor_and_both_shapes_and_applies_nothing()
    {
        var source = new TinyLm();
        using ITunerModel sourceTuner = Apply(source, Config(("target_modules", List("q_proj")), ("r", 2)));
        using AdapterState good = sourceTuner.ExportAdapter("default");
        var tensors = good.Tensors.ToDictionary(t => t.Key, t => t.Value);
        tensors["layers.1.q_proj.lora_A.weight"] = torch.zeros(3, 6);
        var target = new TinyLm();
        ITunerModel tuner = Attach(target);
        var e = Assert.Throws<InvalidDataException>(() => tuner.ImportAdapter(good with { Tensors = tensors }));
        Assert.Contains("'layers.1.q_proj.lora_A.weight'", e.Message);
        Assert.Contains("[3, 6]", e.Message);
        Assert.Contains("[2, 6]", e.Message);
        Assert.Empty(tuner.Adapters);
        Assert.DoesNotContain(target.named_modules(), m => m.name.Contains("lora", StringComparison.Ordinal));
    }

    [Fact]
    public void A_pissa_adapter_exported_and_imported_again_is_not_initialised_twice()
    {
        var model = new TinyLm();
        using var ids = torch.tensor(new long[] { 1, 4, 9, 2 }, [1, 4]);
        using ITunerModel tuner = Apply(model, Config(("target_modules", List("q_proj", "c_fc")), ("r", 2), ("init_lora_weights", "pissa")));
        var p = Params(model);
        using (no_grad()) p["layers.0.q_proj.lora_B.default.weight"].add_(0.1);
        using var before = model.forward(ids);
        using AdapterState state = tuner.ExportAdapter("default");
        tuner.Detach();
        using ITunerModel again = Attach(model);
        again.ImportAdapter(state);
        using var after = model.forward(ids);
        Assert.Equal(0.0, Diff(before, after));
    }
}
