using System.Text.Json.Nodes;
using PeftHost.Abstractions.Tuning;
using PeftHost.Tests.Support;
using TorchSharp;
using Xunit;
using static PeftHost.Tests.Lora.LoraHarness;
using static TorchSharp.torch;

namespace PeftHost.Tests.Lora;

/// <summary>Merging forms ΔW once; unmerging restores the base; safe merge refuses NaN before touching anything.</summary>
public class LoraMergeTests
{
    [Fact]
    public void Linear_merge_adds_scaled_B_A_and_unmerge_restores_the_weight()
    {
        var model = new OneLinear(8, 6);
        using var x = torch.randn(3, 8);
        using var w0 = Copy(model, "linear.weight");
        using ITunerModel tuner = Apply(model, Config(("target_modules", List("linear")), ("r", 2), ("lora_alpha", 5), ("init_lora_weights", false)));
        using var unmerged = model.forward(x);
        var p = Params(model);
        using var delta = p["linear.lora_B.default.weight"].matmul(p["linear.lora_A.default.weight"]) * 2.5;

        tuner.Merge(["default"], safeMerge: false);
        Assert.Equal(["default"], tuner.MergedAdapters);
        Assert.True(Diff(p["linear.base_layer.weight"], w0 + delta) < 1e-6);
        using (var merged = model.forward(x)) Assert.True(Diff(merged, unmerged) < 1e-5);

        tuner.Unmerge();
        Assert.Empty(tuner.MergedAdapters);
        Assert.True(Diff(p["linear.base_layer.weight"], w0) < 1e-6);
        using (var again = model.forward(x)) Assert.True(Diff(again, unmerged) < 1e-5);
    }

    [Fact]
    public void Conv1D_merge_adds_the_transposed_delta()
    {
        var model = new OneConv1D(6, 9);
        using var x = torch.randn(4, 6);
        using var w0 = Copy(model, "c_attn.weight");
        using ITunerModel tuner = Apply(model, Config(("target_modules", List("c_attn")), ("r", 2), ("lora_alpha", 2), ("init_lora_weights", false)));
        using var unmerged = model.forward(x);
        var p = Params(model);
        using var delta = p["c_attn.lora_B.default.weight"].matmul(p["c_attn.lora_A.default.weight"]).t();
        tuner.Merge(["default"], safeMerge: true);
        Assert.True(Diff(p["c_attn.base_layer.weight"], w0 + delta) < 1e-6);
        using (var merged = model.forward(x)) Assert.True(Diff(merged, unmerged) < 1e-5);
        tuner.Unmerge();
        Assert.True(Diff(p["c_attn.base_layer.weight"], w0) < 1e-6);
    }

    [Theory]
    [InlineData("linear")]
    [InlineData("conv1d")]
    [InlineData("embedding")]
    public void Dora_merge_gives_the_unmerged_output_and_unmerge_restores_the_weight(string kind)
    {
        (TorchSharp.torch.nn.Module<Tensor, Tensor> model, string target, Tensor input) = kind switch
        {
            "linear" => ((TorchSharp.torch.nn.Module<Tensor, Tensor>)new OneLinear(8, 6), "linear", torch.randn(3, 8)),
            "conv1d" => (new OneConv1D(6, 9), "c_attn", torch.randn(3, 6)),
            _ => (new OneEmbedding(12, 5), "embed", torch.tensor(new long[] { 1, 5, 11 })),
        };
        using var x = input;
        string weightName = target + ".weight";
        using var w0 = Copy(model, weightName);
        using ITunerModel tuner = Apply(model, Config(("target_modules", List(target)), ("r", 2), ("lora_alpha", 3), ("use_dora", true), ("init_lora_weights", false)));
        var p = Params(model);
        using (no_grad()) p[target + ".lora_magnitude_vector.default.weight"].mul_(1.3);
        using var unmerged = model.forward(x);

        tuner.Merge(["default"], safeMerge: true);
        using (var merged = model.forward(x)) Assert.True(Diff(merged, unmerged) < 1e-5);
        tuner.Unmerge();
        Assert.True(Diff(p[target + ".base_layer.weight"], w0) < 1e-6);
        using (var again = model.forward(x)) Assert.True(Diff(again, unmerged) < 1e-5);
    }

    [Fact]
    public void Dora_linear_merge_is_the_magnitude_over_the_norm_times_W_plus_delta()
    {
        var model = new OneLinear(8, 6);
        using var w0 = Copy(model, "linear.weight");
        using ITunerModel tuner = Apply(model, Config(("target_modules", List("linear")), ("r", 2), ("lora_alpha", 2), ("use_dora", true), ("init_lora_weights", false)));
        var p = Params(model);
        Tensor m = p["linear.lora_magnitude_vector.default.weight"];
        using (no_grad()) m.mul_(torch.linspace(0.5, 2.0, 6));
        using var combined = w0 + p["linear.lora_B.default.weight"].matmul(p["linear.lora_A.default.weight"]);
        using var expected = (m / combined.pow(2).sum(1).sqrt()).view(-1, 1) * combined;
        tuner.Merge(["default"], safeMerge: false);
        Assert.True(Diff(p["linear.base_layer.weight"], expected) < 1e-5);
    }

    [Fact]
    public void Safe_merge_refuses_nan_and_leaves_every_weight_untouched()
    {
        var model = new TwoBlocks(8);
        using var q0 = Copy(model, "layers.0.q_proj.weight");
        using var q1 = Copy(model, "layers.1.q_proj.weight");
        using ITunerModel tuner = Apply(model, Config(("target_modules", List("q_proj")), ("r", 2), ("init_lora_weights", false)));
        var p = Params(model);
        using (no_grad()) p["layers.1.q_proj.lora_B.default.weight"][0, 0].fill_(float.NaN);

        var e = Assert.Throws<InvalidDataException>(() => tuner.Merge(["default"], safeMerge: true));
        Assert.Contains("default", e.Message);
        Assert.Empty(tuner.MergedAdapters);
        Assert.Equal(0.0, Diff(p["layers.1.q_proj.base_layer.weight"], q1));
        Assert.True(Diff(p["layers.0.q_proj.base_layer.weight"], q0) < 1e-6, "the layer merged before the broken one is unmerged again");
    }

    [Fact]
    public void Safe_merge_on_a_single_layer_changes_nothing_at_all()
    {
        var model = new OneLinear(8, 6);
        using var w0 = Copy(model, "linear.weight");
        using ITunerModel tuner = Apply(model, Config(("target_modules", List("linear")), ("r", 2), ("init_lora_weights", false), ("use_dora", true)));
        var p = Params(model);
        using (no_grad()) p["linear.lora_A.default.weight"][1, 3].fill_(float.PositiveInfinity);
        Assert.Throws<InvalidDataException>(() => tuner.Merge(["default"], safeMerge: true));
        Assert.Equal(0.0, Diff(p["linear.base_layer.weight"], w0));
    }
}
