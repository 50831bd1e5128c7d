using System.Text.Json.Nodes;
using PeftHost.Abstractions.Tuning;
using PeftHost.Tests.Support;
using TorchSharp;
using Xunit;
using static PeftHost.Tests.Lora.LoraHarness;
using static TorchSharp.torch;

namespace PeftHost.Tests.Lora;

/// <summary>init_lora_weights: PEFT's initialisations, including those that rewrite the base weight.</summary>
public class LoraInitTests
{
    private static double Max(Tensor t) => t.abs().max().item<float>();

    [Fact]
    public void True_is_kaiming_uniform_A_and_zero_B_so_the_output_is_unchanged()
    {
        var model = new OneLinear(64, 6);
        using var x = torch.randn(2, 64);
        using var baseOut = model.forward(x);
        using ITunerModel tuner = Apply(model, Config(("target_modules", List("linear")), ("r", 4)));
        var p = Params(model);
        Assert.Equal(0.0, Max(p["linear.lora_B.default.weight"]));
        double bound = 1 / Math.Sqrt(64); // kaiming_uniform(a=√5): gain √(2/6), bound gain·√(3/fan_in)
        Assert.InRange(Max(p["linear.lora_A.default.weight"]), bound / 2, bound);
        using var adapted = model.forward(x);
        Assert.Equal(0.0, Diff(adapted, baseOut));
    }

    [Fact]
    public void Gaussian_draws_A_with_std_one_over_r_and_zero_B()
    {
        var model = new OneLinear(256, 6);
        using ITunerModel tuner = Apply(model, Config(("target_modules", List("linear")), ("r", 4), ("init_lora_weights", "gaussian")));
        var p = Params(model);
        Assert.Equal(0.0, Max(p["linear.lora_B.default.weight"]));
        Assert.InRange(p["linear.lora_A.default.weight"].std().item<float>(), 0.25 * 0.85, 0.25 * 1.15);
    }

    [Fact]
    public void False_keeps_random_factors_and_embedding_true_is_zero_A_and_normal_B()
    {
        var linear = new OneLinear(8, 6);
        using (ITunerModel t = Apply(linear, Config(("target_modules", List("linear")), ("init_lora_weights", false))))
            Assert.True(Max(Params(linear)["linear.lora_B.default.weight"]) > 0);

        var embedding = new OneEmbedding(40, 30);
        using ITunerModel tuner = Apply(embedding, Config(("target_modules", List("embed")), ("r", 8)));
        var p = Params(embedding);
        Assert.Equal(0.0, Max(p["embed.lora_embedding_A.default"]));
        Assert.InRange(p["embed.lora_embedding_B.default"].std().item<float>(), 0.85, 1.15);
    }

    [Theory]
    [InlineData("pissa", "linear")]
    [InlineData("pissa_niter_4", "linear")]
    [InlineData("olora", "linear")]
    [InlineData("pissa", "conv1d")]
    [InlineData("olora", "conv1d")]
    public void Pissa_and_olora_leave_residual_plus_scaled_B_A_equal_to_the_original_weight(string init, string kind)
    {
        nn.Module<Tensor, Tensor> model = kind == "linear" ? new OneLinear(8, 6) : new OneConv1D(6, 9);
        string target = kind == "linear" ? "linear" : "c_attn";
        using var x = torch.randn(3, kind == "linear" ? 8 : 6);
        using var w0 = Copy(model, target + ".weight");
        using var baseOut = model.forward(x);
        using ITunerModel tuner = Apply(model, Config(("target_modules", List(target)), ("r", 3), ("lora_alpha", 6), ("init_lora_weights", init)));
        var p = Params(model);
        Tensor residual = p[target + ".base_layer.weight"], a = p[target + ".lora_A.default.weight"], b = p[target + ".lora_B.default.weight"];
        Assert.True(Diff(residual, w0) > 1e-3, "the base weight became the residual");
        using var ba = b.matmul(a) * 2.0;
        using var rebuilt = residual + (kind == "linear" ? ba : ba.t());
        Assert.True(Diff(rebuilt, w0) < 1e-5);
        using (var adapted = model.forward(x)) Assert.True(Diff(adapted, baseOut) < 1e-5, "the adapted model starts equal to the original");

        if (init == "olora")
        {
            using var gram = b.t().matmul(b);
            Assert.True(Diff(gram, torch.eye(3)) < 1e-5, "B holds orthonormal columns (Q of W = QR)");
        }
        if (init == "pissa")
        {
            // A = √S_r Uᵀ_r / √s and B = V_r √S_r / √s: the rows of A are orthogonal, so A Aᵀ is diagonal.
            using var aat = a.matmul(a.t());
            Assert.True(Diff(aat, torch.diag(aat.diagonal())) < 1e-4);
        }
    }

    [Fact]
    public void Pissa_with_a_rank_above_the_weight_rank_is_refused_by_name()
    {
        var model = new OneLinear(8, 2);
        ITunerModel tuner = Attach(model);
        var e = Assert.Throws<PeftHost.Abstractions.Config.TunerConfigException>(() => tuner.AddAdapter("default", Tuner.ParseConfig(Config(("target_modules", List("linear")), ("r", 4), ("init_lora_weights", "pissa")))));
        Assert.Contains("'r'", e.Message);
        Assert.Empty(tuner.Adapters);
    }
}
