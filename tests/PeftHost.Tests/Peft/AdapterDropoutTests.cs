using PeftHost.Abstractions.Layers;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace PeftHost.Tests.Peft;

/// <summary>
/// The contract's adapter dropout computes what PEFT's <c>nn.Dropout(p)</c> / <c>nn.Identity()</c> compute: while
/// training, each element zeroed with probability p and the others scaled by 1 / (1 - p), with the same random draws
/// as TorchSharp's dropout; its input unchanged in evaluation mode or when p is 0.
/// </summary>
public sealed class AdapterDropoutTests
{
    [Fact]
    public void While_training_it_zeroes_a_share_p_and_scales_the_rest_by_one_over_one_minus_p_with_torchs_draws()
    {
        using Tensor x = torch.rand(200, 500, generator: new Generator(3)) + 0.5;   // no zeros of its own
        using var dropout = new AdapterDropout(0.3);
        dropout.train();
        torch.manual_seed(11);
        using Tensor y = dropout.forward(x);
        torch.manual_seed(11);
        using Tensor expected = nn.functional.dropout(x, 0.3, training: true);
        Assert.True(y.eq(expected).all().item<bool>(), "not the same draws as TorchSharp's dropout");

        using Tensor zeros = y.eq(0);
        double share = zeros.to(ScalarType.Float64).mean().item<double>();
        Assert.InRange(share, 0.29, 0.31);   // 100 000 draws: 0.3 within about 7 standard deviations
        using Tensor kept = zeros.logical_not();
        using Tensor ratio = y.masked_select(kept) / x.masked_select(kept);
        Assert.True(ratio.allclose(torch.full_like(ratio, 1 / 0.7), rtol: 1e-6, atol: 0), "survivors not scaled by 1 / (1 - p)");
    }

    [Theory]
    [InlineData(0.0, true)]
    [InlineData(0.5, false)]
    public void In_evaluation_mode_or_with_p_zero_it_passes_the_input_through(double p, bool training)
    {
        using Tensor x = torch.randn(4, 6, generator: new Generator(5));
        using var dropout = new AdapterDropout(p);
        dropout.train(training);
        using Tensor y = dropout.forward(x);
        Assert.True(y.eq(x).all().item<bool>());
        Assert.Equal(p == 0, dropout.IsIdentity);
        Assert.Equal(p, dropout.Probability);
    }

    [Theory]
    [InlineData(-0.1)]
    [InlineData(1.5)]
    [InlineData(double.NaN)]
    public void A_probability_outside_zero_to_one_is_refused(double p)
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new AdapterDropout(p));
        Assert.Equal("probability", e.ParamName);
        Assert.Contains("[0, 1]", e.Message);
    }
}
