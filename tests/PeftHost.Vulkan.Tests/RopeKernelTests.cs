using PeftHost.Vulkan.Kernels;
using PeftHost.Vulkan.Runtime;
using Xunit;

namespace PeftHost.Vulkan.Tests;

/// <summary>RoPE in both pairings against a double-precision reference.</summary>
public sealed class RopeKernelTests(VulkanFixture fixture)
{
    [Theory]
    [InlineData(RopeStyle.Neox, 5, 3, 96, false)]
    [InlineData(RopeStyle.Normal, 5, 3, 96, false)]
    [InlineData(RopeStyle.Neox, 7, 1, 2, false)]
    [InlineData(RopeStyle.Neox, 3, 5, 64, true)]
    [InlineData(RopeStyle.Normal, 3, 5, 64, true)]
    public void Matches_cpu(RopeStyle style, int tokens, int heads, int headDim, bool inPlace)
    {
        VulkanContext ctx = fixture.Full;
        float[] x = CpuReference.Random(tokens * heads * headDim, 51 + headDim);
        var rng = new Random(52);
        int[] pos = Enumerable.Range(0, tokens).Select(_ => rng.Next(0, 200)).ToArray();
        const float freqBase = 10000f;
        using VulkanBuffer xb = ctx.Upload<float>(x, "x");
        using VulkanBuffer pb = ctx.Upload<int>(pos, "pos");
        using VulkanBuffer yb = ctx.CreateBuffer((ulong)x.Length * 4, "y");
        VulkanBuffer target = inPlace ? xb : yb;
        using (VulkanCommandRecorder rec = ctx.CreateRecorder())
        {
            new RopeKernel(ctx, style).Record(rec, xb, pb, target, tokens, heads, headDim, freqBase);
            rec.Submit();
        }
        float[] y = target.Download<float>();
        (double[] expected, double[] theta) = CpuReference.Rope(x, pos, tokens, heads, headDim, freqBase, style == RopeStyle.Neox);
        for (int i = 0; i < y.Length; i++)
        {
            // The angle is pos * exp2(float): a few ulp relative, i.e. an absolute angle error of
            // about 8u * theta; sin/cos of the rounded angle add a few ulp more.
            double tol = (8 * CpuReference.U * theta[i] + 16 * CpuReference.U) * 2 + 1e-30;
            Assert.True(Math.Abs(y[i] - expected[i]) <= tol, $"rope {style} {i}: {y[i]} vs {expected[i]} (theta {theta[i]:g4}, tolerance {tol:g3})");
        }
    }

    [Fact]
    public void Odd_head_dimension_is_rejected()
    {
        VulkanContext ctx = fixture.Full;
        using VulkanBuffer b = ctx.CreateBuffer(1024, "b");
        using VulkanCommandRecorder rec = ctx.CreateRecorder();
        Assert.Throws<ArgumentOutOfRangeException>(() => new RopeKernel(ctx, RopeStyle.Neox).Record(rec, b, b, b, 1, 1, 3, 10000f));
    }
}
