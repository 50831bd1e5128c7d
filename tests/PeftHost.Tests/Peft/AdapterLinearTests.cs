using PeftHost.Abstractions.Layers;
using TorchSharp;
using TorchSharp.Modules;
using Xunit;
using static TorchSharp.torch;

namespace PeftHost.Tests.Peft;

/// <summary>
/// The contract's linear layer for adapter factors behaves as TorchSharp's <c>nn.Linear</c> (and so PyTorch's):
/// the same initial values from the same seed, y = x·Wᵀ + b, parameters named <c>weight</c> and <c>bias</c>, and
/// <c>to()</c> converting them in place of the properties.
/// </summary>
public sealed class AdapterLinearTests
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void It_starts_from_nn_linears_values_for_the_same_seed(bool hasBias)
    {
        torch.manual_seed(7);
        using Linear reference = nn.Linear(12, 5, hasBias: hasBias);
        torch.manual_seed(7);
        using var layer = new AdapterLinear(12, 5, hasBias: hasBias);
        Assert.True(layer.weight.eq(reference.weight!).all().item<bool>(), "weight differs from nn.Linear's for the same seed");
        Assert.Equal(hasBias, layer.bias is not null);
        if (hasBias) Assert.True(layer.bias!.eq(reference.bias!).all().item<bool>(), "bias differs from nn.Linear's for the same seed");
        // Kaiming-uniform with a = √5 bounds the weight by 1/√in, as PyTorch's reset_parameters.
        Assert.True(layer.weight.abs().max().item<float>() <= 1 / Math.Sqrt(12) + 1e-7);
        Assert.Equal(hasBias ? ["weight", "bias"] : ["weight"], layer.named_parameters().Select(p => p.name).ToArray());
        Assert.Equal((12L, 5L), (layer.InFeatures, layer.OutFeatures));
    }

    [Fact]
    public void Its_forward_is_x_times_w_transposed_plus_b()
    {
        using var layer = new AdapterLinear(3, 2);
        using (no_grad())
        {
            layer.weight.copy_(torch.tensor(new float[] { 1, 2, 3, -1, 0, 4 }).reshape(2, 3));
            layer.bias!.copy_(torch.tensor(new float[] { 0.5f, -2 }));
        }
        using Tensor x = torch.tensor(new float[] { 1, 1, 1, 2, 0, -1 }).reshape(2, 3);
        using Tensor y = layer.forward(x);
        // Row 1: [1+2+3+0.5, -1+0+4-2] = [6.5, 1]; row 2: [2+0-3+0.5, -2+0-4-2] = [-0.5, -8].
        Assert.Equal(new float[] { 6.5f, 1, -0.5f, -8 }, y.data<float>().ToArray());
    }

    [Fact]
    public void To_a_dtype_converts_the_parameters_the_properties_return_and_training_reaches_them()
    {
        using var layer = new AdapterLinear(4, 3);
        layer.to(ScalarType.Float64);
        Assert.Equal(ScalarType.Float64, layer.weight.dtype);
        Assert.Equal(ScalarType.Float64, layer.bias!.dtype);
        Assert.Same(layer.weight, layer.named_parameters().Single(p => p.name == "weight").parameter);
        using Tensor x = torch.ones(2, 4, dtype: ScalarType.Float64);
        using Tensor loss = layer.forward(x).sum();
        loss.backward();
        Assert.NotNull(layer.weight.grad);
    }

    [Fact]
    public void Setting_the_weight_registers_the_new_parameter()
    {
        using var layer = new AdapterLinear(4, 3, hasBias: false);
        var replacement = new Parameter(torch.zeros(3, 4));
        layer.weight = replacement;
        Assert.Same(replacement, layer.named_parameters().Single().parameter);
        Assert.Equal(0f, layer.weight.abs().sum().item<float>());
    }

    [Theory]
    [InlineData(0, 3)]
    [InlineData(3, -1)]
    public void A_size_that_is_not_positive_is_refused(long inFeatures, long outFeatures)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new AdapterLinear(inFeatures, outFeatures));
    }
}
