using PeftHost.Vulkan.Kernels;
using PeftHost.Vulkan.Runtime;
using Xunit;

namespace PeftHost.Vulkan.Tests;

/// <summary>RMSNorm, softmax, SiLU-gate and add against double-precision CPU references, at odd sizes.</summary>
public sealed class NormAndActivationKernelTests(VulkanFixture fixture)
{
    [Theory]
    [InlineData(37, 4100)]
    [InlineData(3, 96)]
    [InlineData(1, 1)]
    public void RmsNorm_matches_cpu(int rows, int n)
    {
        VulkanContext ctx = fixture.Full;
        float[] x = CpuReference.Random(rows * n, 11, 3f);
        float[] w = CpuReference.Random(n, 12);
        using VulkanBuffer xb = ctx.Upload<float>(x, "x");
        using VulkanBuffer wb = ctx.Upload<float>(w, "w");
        using VulkanBuffer yb = ctx.CreateBuffer((ulong)(rows * n) * 4, "y");
        using (VulkanCommandRecorder rec = ctx.CreateRecorder())
        {
            new RmsNormKernel(ctx).Record(rec, xb, wb, yb, rows, n, 1e-5f);
            rec.Submit();
        }
        float[] y = yb.Download<float>();
        double[] expected = CpuReference.RmsNorm(x, w, rows, n, 1e-5f);
        // Sum of squares: n/64 + 6 rounded adds; inversesqrt within 2 ulp; two products.
        double rel = (n / 64.0 + 6 + 2 + 2 + 2) * CpuReference.U;
        for (int i = 0; i < y.Length; i++)
        {
            Assert.True(Math.Abs(y[i] - expected[i]) <= rel * Math.Abs(expected[i]) + 1e-30, $"rmsnorm {i}: {y[i]} vs {expected[i]}");
        }
    }

    [Theory]
    [InlineData(37, 4100)]
    [InlineData(5, 1)]
    [InlineData(2, 65)]
    public void Softmax_matches_cpu(int rows, int n)
    {
        VulkanContext ctx = fixture.Full;
        float[] x = CpuReference.Random(rows * n, 21, 8f);
        using VulkanBuffer xb = ctx.Upload<float>(x, "x");
        using VulkanBuffer yb = ctx.CreateBuffer((ulong)(rows * n) * 4, "y");
        using (VulkanCommandRecorder rec = ctx.CreateRecorder())
        {
            new SoftmaxKernel(ctx).Record(rec, xb, yb, rows, n);
            rec.Submit();
        }
        float[] y = yb.Download<float>();
        double[] expected = CpuReference.Softmax(x, rows, n);
        // exp is within 3 + 2|x| ulp in Vulkan (|x - max| <= 16 here), plus the sum's rounding.
        double rel = (3 + 2 * 16 + n / 64.0 + 6 + 4) * CpuReference.U;
        for (int i = 0; i < y.Length; i++)
        {
            Assert.True(Math.Abs(y[i] - expected[i]) <= rel * expected[i] + 1e-30, $"softmax {i}: {y[i]} vs {expected[i]}");
        }
    }

    [Theory]
    [InlineData(4101)]
    [InlineData(37)]
    public void SiluMul_matches_cpu(int n)
    {
        VulkanContext ctx = fixture.Full;
        float[] a = CpuReference.Random(n, 31, 8f);
        float[] b = CpuReference.Random(n, 32, 2f);
        using VulkanBuffer ab = ctx.Upload<float>(a, "a");
        using VulkanBuffer bb = ctx.Upload<float>(b, "b");
        using VulkanBuffer yb = ctx.CreateBuffer((ulong)n * 4, "y");
        using (VulkanCommandRecorder rec = ctx.CreateRecorder())
        {
            new SiluMulKernel(ctx).Record(rec, ab, bb, yb, n);
            rec.Submit();
        }
        float[] y = yb.Download<float>();
        for (int i = 0; i < n; i++)
        {
            double expected = CpuReference.SiluMul(a[i], b[i]);
            // exp within 3 + 2|a| ulp (|a| <= 8), then an add, a divide and a multiply.
            double tol = (3 + 2 * 8 + 4) * CpuReference.U * Math.Abs(expected) + 1e-30;
            Assert.True(Math.Abs(y[i] - expected) <= tol, $"silu_mul {i}: {y[i]} vs {expected}");
        }
    }

    [Theory]
    [InlineData(4101)]
    [InlineData(1)]
    public void Add_is_exact(int n)
    {
        VulkanContext ctx = fixture.Full;
        float[] a = CpuReference.Random(n, 41);
        float[] b = CpuReference.Random(n, 42);
        using VulkanBuffer ab = ctx.Upload<float>(a, "a");
        using VulkanBuffer bb = ctx.Upload<float>(b, "b");
        using (VulkanCommandRecorder rec = ctx.CreateRecorder())
        {
            new AddKernel(ctx).Record(rec, ab, bb, ab, n);   // in place, as residuals are
            rec.Submit();
        }
        float[] y = ab.Download<float>();
        Assert.Equal(a.Zip(b, (p, q) => p + q).ToArray(), y);
    }
}
