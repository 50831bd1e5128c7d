using System.Text.Json.Nodes;
using PeftHost.Abstractions.Layers;
using PeftHost.Abstractions.Tuning;
using PeftHost.Tests.Support;
using TorchSharp;
using Xunit;
using static PeftHost.Tests.Lora.LoraHarness;
using static TorchSharp.torch;

namespace PeftHost.Tests.Lora;

/// <summary>Unmerged forward passes against PEFT's formulas, computed here with plain tensor math.</summary>
public class LoraForwardTests
{
    [Fact]
    public void Linear_with_rslora_adds_x_At_Bt_times_alpha_over_sqrt_r()
    {
        var model = new OneLinear(8, 6);
        using var x = torch.randn(3, 8);
        using var baseOut = model.forward(x);
        using ITunerModel tuner = Apply(model, Config(("target_modules", List("linear")), ("r", 4), ("lora_alpha", 8), ("use_rslora", true), ("init_lora_weights", false)));
        var p = Params(model);
        Assert.Equal([4L, 8L], p["linear.lora_A.default.weight"].shape);
        Assert.Equal([6L, 4L], p["linear.lora_B.default.weight"].shape);
        using var expected = baseOut + x.matmul(p["linear.lora_A.default.weight"].t()).matmul(p["linear.lora_B.default.weight"].t()) * (8 / Math.Sqrt(4));
        using var actual = model.forward(x);
        Assert.True(Diff(actual, expected) < 1e-5);
    }

    [Fact]
    public void Several_active_adapters_add_their_paths_and_mixed_batches_route_rows()
    {
        var model = new OneLinear(8, 6);
        using var x = torch.randn(3, 8);
        using var baseOut = model.forward(x);
        using ITunerModel tuner = Apply(model, Config(("target_modules", List("linear")), ("r", 2), ("lora_alpha", 4), ("init_lora_weights", false)), "a");
        tuner.AddAdapter("b", Tuner.ParseConfig(Config(("target_modules", List("linear")), ("r", 3), ("lora_alpha", 3), ("init_lora_weights", false))));
        tuner.SetActiveAdapters(["a", "b"]);
        var p = Params(model);
        using var pathA = x.matmul(p["linear.lora_A.a.weight"].t()).matmul(p["linear.lora_B.a.weight"].t()) * 2.0;
        using var pathB = x.matmul(p["linear.lora_A.b.weight"].t()).matmul(p["linear.lora_B.b.weight"].t()) * 1.0;
        using (var both = model.forward(x))
            Assert.True(Diff(both, baseOut + pathA + pathB) < 1e-5);

        using (AdapterRouting.Begin(["b", AdapterRouting.BaseModel, "a"]))
        using (var mixed = model.forward(x))
        {
            Assert.True(Diff(mixed[0], baseOut[0] + pathB[0]) < 1e-5);
            Assert.True(Diff(mixed[1], baseOut[1]) < 1e-6);
            Assert.True(Diff(mixed[2], baseOut[2] + pathA[2]) < 1e-5);
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Mixed_batches_of_sequences_add_each_rows_own_path_whether_ranks_match_or_not(bool grad)
    {
        // Sequences ([rows, tokens, features]) whose adapters share a rank take the stacked path, the others a group at a time:
        // either way row i gets x_i A^T B^T * alpha / r of its own adapter, and a base row nothing.
        var model = new OneLinear(8, 6);
        using var x = torch.randn(4, 5, 8);
        using var baseOut = model.forward(x);
        using ITunerModel tuner = Apply(model, Config(("target_modules", List("linear")), ("r", 2), ("lora_alpha", 4), ("init_lora_weights", false)), "a");
        tuner.AddAdapter("b", Tuner.ParseConfig(Config(("target_modules", List("linear")), ("r", 2), ("lora_alpha", 2), ("init_lora_weights", false))));
        tuner.AddAdapter("c", Tuner.ParseConfig(Config(("target_modules", List("linear")), ("r", 3), ("lora_alpha", 6), ("init_lora_weights", false))));
        var p = Params(model);
        Tensor Path(string name, double scale) => x.matmul(p[$"linear.lora_A.{name}.weight"].t()).matmul(p[$"linear.lora_B.{name}.weight"].t()) * scale;
        var paths = new Dictionary<string, Tensor> { ["a"] = Path("a", 2.0), ["b"] = Path("b", 1.0), ["c"] = Path("c", 2.0) };
        string[][] routings =
        [
            ["b", "a", "a", "b"],                      // every row, one rank: stacked
            ["a", AdapterRouting.BaseModel, "b", "a"], // some rows, one rank: stacked over the selected rows
            ["c", "a", AdapterRouting.BaseModel, "b"], // ranks differ: a group at a time
        ];
        foreach (string[] routing in routings)
        {
            using var mode = torch.enable_grad(grad);
            using (AdapterRouting.Begin(routing))
            using (var mixed = model.forward(x))
            {
                for (int row = 0; row < routing.Length; row++)
                {
                    using Tensor expected = routing[row] == AdapterRouting.BaseModel ? baseOut[row].clone() : baseOut[row] + paths[routing[row]][row];
                    Assert.True(Diff(mixed[row], expected) < 1e-5, $"{string.Join(",", routing)}: row {row}");
                }
            }
        }
        foreach (Tensor t in paths.Values) t.Dispose();
    }

    [Fact]
    public void Embedding_adds_the_lookup_of_A_transposed_times_B_transposed()
    {
        var model = new OneEmbedding(12, 5);
        using var ids = torch.tensor(new long[] { 0, 3, 11, 3, 7, 1 }, [2, 3]);
        using var baseOut = model.forward(ids);
        using ITunerModel tuner = Apply(model, Config(("target_modules", List("embed")), ("r", 3), ("lora_alpha", 6), ("init_lora_weights", false)));
        var p = Params(model);
        Tensor a = p["embed.lora_embedding_A.default"], b = p["embed.lora_embedding_B.default"];
        Assert.Equal([3L, 12L], a.shape);
        Assert.Equal([5L, 3L], b.shape);
        using var expected = baseOut + a.t().index_select(0, ids.flatten()).reshape(2, 3, 3).matmul(b.t()) * 2.0;
        using var actual = model.forward(ids);
        Assert.True(Diff(actual, expected) < 1e-5);
        using var state = tuner.ExportAdapter("default");
        Assert.Equal(["embed.lora_embedding_A", "embed.lora_embedding_B"], state.Tensors.Keys.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Conv1D_is_adapted_with_fan_in_fan_out_set_to_true_as_peft_does()
    {
        var model = new OneConv1D(6, 9);
        using var x = torch.randn(2, 4, 6);
        using var baseOut = model.forward(x);
        var p0 = Params(model);
        using var expectedBase = x.matmul(p0["c_attn.weight"]) + p0["c_attn.bias"];
        Assert.True(Diff(baseOut, expectedBase) < 1e-5);
        using ITunerModel tuner = Apply(model, Config(("target_modules", List("c_attn")), ("r", 2), ("lora_alpha", 4), ("init_lora_weights", false)));
        var p = Params(model);
        Assert.Equal([2L, 6L], p["c_attn.lora_A.default.weight"].shape);
        Assert.Equal([9L, 2L], p["c_attn.lora_B.default.weight"].shape);
        using var expected = baseOut + x.matmul(p["c_attn.lora_A.default.weight"].t()).matmul(p["c_attn.lora_B.default.weight"].t()) * 2.0;
        using var actual = model.forward(x);
        Assert.True(Diff(actual, expected) < 1e-5);
        using var state = tuner.ExportAdapter("default");
        Assert.True(state.Config["fan_in_fan_out"]!.GetValue<bool>());
    }

    [Fact]
    public void Fan_in_fan_out_on_a_linear_is_corrected_to_false_as_peft_does()
    {
        var model = new OneLinear(8, 6);
        using var x = torch.randn(2, 8);
        using var baseOut = model.forward(x);
        using ITunerModel tuner = Apply(model, Config(("target_modules", List("linear")), ("r", 2), ("lora_alpha", 2), ("fan_in_fan_out", true), ("init_lora_weights", false)));
        var p = Params(model);
        using var expected = baseOut + x.matmul(p["linear.lora_A.default.weight"].t()).matmul(p["linear.lora_B.default.weight"].t());
        using var actual = model.forward(x);
        Assert.True(Diff(actual, expected) < 1e-5);
        using var state = tuner.ExportAdapter("default");
        Assert.False(state.Config["fan_in_fan_out"]!.GetValue<bool>());
    }

    [Fact]
    public void Dora_linear_forward_follows_peft_with_a_detached_row_norm_and_the_base_bias_left_alone()
    {
        var model = new OneLinear(8, 6);
        using var x = torch.randn(3, 8);
        using ITunerModel tuner = Apply(model, Config(("target_modules", List("linear")), ("r", 2), ("lora_alpha", 4), ("use_dora", true), ("init_lora_weights", false)));
        var p = Params(model);
        Tensor w = p["linear.base_layer.weight"], bias = p["linear.base_layer.bias"], a = p["linear.lora_A.default.weight"], b = p["linear.lora_B.default.weight"];
        Tensor m = p["linear.lora_magnitude_vector.default.weight"];
        using var norm = (w + b.matmul(a) * 2.0).pow(2).sum(1).sqrt();
        Assert.Equal([6L], m.shape);
        Assert.True(Diff(m, norm) < 1e-5, "the magnitude starts as ‖W + ΔW‖ per output row");

        using (no_grad()) m.mul_(torch.linspace(0.5, 1.5, 6));
        using var scale = (m / norm).view(1, -1);
        using var xw = x.matmul(w.t());
        using var expected = xw + bias + (scale - 1) * xw + scale * x.matmul(a.t()).matmul(b.t()) * 2.0;
        using var actual = model.forward(x);
        Assert.True(Diff(actual, expected) < 1e-5);

        actual.sum().backward();
        Assert.NotNull(m.grad);
        using var state = tuner.ExportAdapter("default");
        Assert.Contains("linear.lora_magnitude_vector", state.Tensors.Keys); // PEFT 0.13 saves it without ".weight" (tests/fixtures/peft/lora_dora_llama)
    }

    [Fact]
    public void Dora_embedding_forward_scales_base_and_lora_per_embedding_dimension()
    {
        var model = new OneEmbedding(12, 5);
        using var ids = torch.tensor(new long[] { 2, 9, 4 });
        using ITunerModel tuner = Apply(model, Config(("target_modules", List("embed")), ("r", 2), ("lora_alpha", 2), ("use_dora", true), ("init_lora_weights", false)));
        var p = Params(model);
        Tensor w = p["embed.base_layer.weight"], a = p["embed.lora_embedding_A.default"], b = p["embed.lora_embedding_B.default"];
        Tensor m = p["embed.lora_magnitude_vector.default.weight"];
        using (no_grad()) m.mul_(torch.linspace(0.8, 1.2, 5));
        using var norm = (w + a.t().matmul(b.t())).pow(2).sum(dim: 0).sqrt();
        using var scale = m / norm;
        using var expected = scale * w.index_select(0, ids) + scale * a.t().index_select(0, ids).matmul(b.t());
        using var actual = model.forward(ids);
        Assert.True(Diff(actual, expected) < 1e-5);
    }
}
