using PeftHost.Formats.Gguf;
using PeftHost.Vulkan.Kernels;
using PeftHost.Vulkan.Runtime;
using Xunit;

namespace PeftHost.Vulkan.Tests;

/// <summary>
/// y = W x on the device against CPU dequantize-then-multiply. The bound is float32 rounding of
/// the device's summation: about cols/WG sequential adds per invocation, 32 within a block and
/// log2(WG) in the reduction, each off by at most u times the running sum of |w x|.
/// </summary>
public sealed class MatVecKernelTests(VulkanFixture fixture)
{
    public static TheoryData<GgmlType, int, int, bool> Shapes()
    {
        var data = new TheoryData<GgmlType, int, int, bool>();
        foreach (bool features in new[] { true, false })
        {
            data.Add(GgmlType.F32, 37, 96, features);
            data.Add(GgmlType.F32, 37, 4100, features);
            data.Add(GgmlType.F16, 37, 4100, features);
            data.Add(GgmlType.F16, 3, 37, features);      // odd cols: rows start at 2-byte offsets
            data.Add(GgmlType.Q8_0, 37, 96, features);
            data.Add(GgmlType.Q8_0, 37, 4128, features);  // 129 blocks: not a multiple of the workgroup
            data.Add(GgmlType.Q4_0, 37, 96, features);
            data.Add(GgmlType.Q4_0, 37, 4128, features);
            data.Add(GgmlType.Q4_0, 1, 32, features);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Matches_cpu_dequantize_then_multiply(GgmlType type, int rows, int cols, bool features)
    {
        VulkanContext ctx = fixture.Get(features);
        Check(ctx, type, rows, cols, seed: rows * 7919 + cols);
    }

    [Fact]
    public void More_rows_than_one_grid_dimension_allows()
    {
        VulkanContext ctx = fixture.Full;
        int rows = (int)Math.Min(ctx.Device.MaxWorkgroupCount, 1u << 20) + 3;
        Check(ctx, GgmlType.Q4_0, rows, 32, seed: 5);
    }

    [Fact]
    public void Variant_follows_the_enabled_features()
    {
        Assert.Equal("matvec_q4_0", new MatVecKernel(fixture.Fallback, GgmlType.Q4_0).ShaderName);
        var full = new MatVecKernel(fixture.Full, GgmlType.Q8_0);
        Assert.Equal((fixture.Full.EnabledFeatures & VulkanFeatures.Storage16Bit) != 0, full.ShaderName.Contains("_16bit", StringComparison.Ordinal));
        Assert.Equal((fixture.Full.EnabledFeatures & VulkanFeatures.SubgroupArithmetic) != 0, full.ShaderName.EndsWith("_subgroup", StringComparison.Ordinal));
    }

    [Fact]
    public void Undersized_buffers_and_partial_blocks_are_rejected()
    {
        VulkanContext ctx = fixture.Full;
        using VulkanBuffer small = ctx.CreateBuffer(16, "small");
        using VulkanBuffer big = ctx.CreateBuffer(4096, "big");
        using VulkanCommandRecorder rec = ctx.CreateRecorder();
        var k = new MatVecKernel(ctx, GgmlType.Q8_0);
        Assert.Contains("'small'", Assert.Throws<ArgumentException>(() => k.Record(rec, small, big, big, 2, 32)).Message);
        Assert.Contains("multiple of the block size 32", Assert.Throws<ArgumentException>(() => k.Record(rec, big, big, big, 1, 40)).Message);
    }

    private static void Check(VulkanContext ctx, GgmlType type, int rows, int cols, int seed)
    {
        const int wg = 32;
        float[] w = CpuReference.Random(rows * cols, seed);
        float[] x = CpuReference.Random(cols, seed + 1);
        byte[] encoded = GgmlQuantization.Quantize(type, w);
        float[] wq = GgmlQuantization.Dequantize(type, encoded);
        (double[] expected, double[] abs) = CpuReference.MatVec(wq, x, rows, cols);

        using VulkanBuffer wb = ctx.Upload<byte>(encoded, "W");
        using VulkanBuffer xb = ctx.Upload<float>(x, "x");
        using VulkanBuffer yb = ctx.CreateBuffer((ulong)rows * 4, "y");
        using (VulkanCommandRecorder rec = ctx.CreateRecorder())
        {
            new MatVecKernel(ctx, type, wg).Record(rec, wb, xb, yb, rows, cols);
            rec.Submit();
        }
        float[] y = yb.Download<float>();
        double depth = cols / wg + 32 + Math.Log2(wg) + 4;
        for (int r = 0; r < rows; r++)
        {
            double tol = depth * CpuReference.U * abs[r] + 1e-30;
            Assert.True(Math.Abs(y[r] - expected[r]) <= tol, $"{type} {rows}x{cols} row {r}: {y[r]} vs {expected[r]} (tolerance {tol:g3})");
        }
    }
}
