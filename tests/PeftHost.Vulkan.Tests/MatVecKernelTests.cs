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
    public static TheoryData<GgmlType, int, int, bool, MatVecLayout> Shapes()
    {
        var data = new TheoryData<GgmlType, int, int, bool, MatVecLayout>();
        foreach ((bool features, MatVecLayout layout) in new[] { (true, MatVecLayout.WorkgroupPerRow), (false, MatVecLayout.WorkgroupPerRow), (true, MatVecLayout.RowPerInvocation) })
        {
            data.Add(GgmlType.F32, 37, 96, features, layout);
            data.Add(GgmlType.F32, 37, 4100, features, layout);
            data.Add(GgmlType.F16, 37, 4100, features, layout);
            data.Add(GgmlType.F16, 3, 37, features, layout);      // odd cols: rows start at 2-byte offsets
            data.Add(GgmlType.Q8_0, 37, 96, features, layout);
            data.Add(GgmlType.Q8_0, 37, 4128, features, layout);  // 129 blocks: not a multiple of the workgroup
            data.Add(GgmlType.Q4_0, 37, 96, features, layout);
            data.Add(GgmlType.Q4_0, 37, 4128, features, layout);
            data.Add(GgmlType.Q4_0, 1, 32, features, layout);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Matches_cpu_dequantize_then_multiply(GgmlType type, int rows, int cols, bool features, MatVecLayout layout)
    {
        VulkanContext ctx = fixture.Get(features);
        Check(ctx, type, rows, cols, seed: rows * 7919 + cols, layout);
    }

    [Theory]
    [InlineData(GgmlType.F32, 8u, 4)]
    [InlineData(GgmlType.F32, 16u, 5)]
    [InlineData(GgmlType.F16, 8u, 0)]
    [InlineData(GgmlType.F16, 8u, 3)]
    [InlineData(GgmlType.Q8_0, 8u, 0)]
    [InlineData(GgmlType.Q8_0, 16u, 0)]
    [InlineData(GgmlType.Q4_0, 8u, 0)]
    [InlineData(GgmlType.Q4_0, 16u, 0)]
    public void Row_per_invocation_handles_partial_workgroups_and_unaligned_rows(GgmlType type, uint workgroup, int extraCols)
    {
        // 35 rows: the last workgroup is partial. 3 (odd) blocks per row: quantized rows start at 2-byte offsets.
        int cols = 96 + extraCols;
        Check(fixture.Full, type, 35, cols, seed: 11 + cols, MatVecLayout.RowPerInvocation, workgroup);
        Check(fixture.Full, type, 35, 2 * cols, seed: 12 + cols, MatVecLayout.RowPerInvocation, workgroup);
    }

    [Fact]
    public void Accumulate_adds_to_y_in_both_layouts()
    {
        VulkanContext ctx = fixture.Full;
        const int rows = 19, cols = 64;
        float[] w = CpuReference.Random(rows * cols, 3);
        float[] x = CpuReference.Random(cols, 4);
        float[] y0 = CpuReference.Random(rows, 5);
        byte[] encoded = GgmlQuantization.Quantize(GgmlType.Q4_0, w);
        (double[] expected, double[] abs) = CpuReference.MatVec(GgmlQuantization.Dequantize(GgmlType.Q4_0, encoded), x, rows, cols);
        foreach (MatVecLayout layout in new[] { MatVecLayout.WorkgroupPerRow, MatVecLayout.RowPerInvocation })
        {
            using VulkanBuffer wb = ctx.Upload<byte>(encoded, "W");
            using VulkanBuffer xb = ctx.Upload<float>(x, "x");
            using VulkanBuffer yb = ctx.Upload<float>(y0, "y");
            using (VulkanCommandRecorder rec = ctx.CreateRecorder())
            {
                new MatVecKernel(ctx, GgmlType.Q4_0, accumulate: true, layout: layout).Record(rec, wb, xb, yb, rows, cols);
                rec.Submit();
            }
            float[] y = yb.Download<float>();
            for (int r = 0; r < rows; r++)
            {
                Assert.True(Math.Abs(y[r] - (y0[r] + expected[r])) <= 64 * CpuReference.U * (abs[r] + Math.Abs(y0[r])) + 1e-30, $"{layout} row {r}");
            }
        }
    }

    [Fact]
    public void More_rows_than_one_grid_dimension_allows()
    {
        VulkanContext ctx = fixture.Full;
        int rows = (int)Math.Min(ctx.Device.MaxWorkgroupCount, 1u << 20) + 3;
        Check(ctx, GgmlType.Q4_0, rows, 32, seed: 5);
        Check(ctx, GgmlType.Q4_0, rows, 64, seed: 6, MatVecLayout.RowPerInvocation, 8);
    }

    [Fact]
    public void Variant_follows_the_enabled_features()
    {
        Assert.Equal("matvec_q4_0", new MatVecKernel(fixture.Fallback, GgmlType.Q4_0, layout: MatVecLayout.WorkgroupPerRow).ShaderName);
        Assert.Equal("matvec_rows_q4_0", new MatVecKernel(fixture.Fallback, GgmlType.Q4_0, layout: MatVecLayout.RowPerInvocation).ShaderName);
        MatVecLayout auto = new MatVecKernel(fixture.Full, GgmlType.F16).Layout;
        Assert.Equal(fixture.Full.Device.Kind == VulkanDeviceKind.Cpu ? MatVecLayout.RowPerInvocation : MatVecLayout.WorkgroupPerRow, auto);
        var full = new MatVecKernel(fixture.Full, GgmlType.Q8_0, layout: MatVecLayout.WorkgroupPerRow);
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

    private static void Check(VulkanContext ctx, GgmlType type, int rows, int cols, int seed,
        MatVecLayout layout = MatVecLayout.WorkgroupPerRow, uint workgroup = 32)
    {
        int wg = (int)workgroup;
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
            new MatVecKernel(ctx, type, workgroup, layout: layout).Record(rec, wb, xb, yb, rows, cols);
            rec.Submit();
        }
        float[] y = yb.Download<float>();
        // Row per invocation: 4 partial sums (vec4) of cols / 4 adds each, then 3 adds.
        double depth = layout == MatVecLayout.RowPerInvocation ? cols / 4 + 32 + 8 : cols / wg + 32 + Math.Log2(wg) + 4;
        for (int r = 0; r < rows; r++)
        {
            double tol = depth * CpuReference.U * abs[r] + 1e-30;
            Assert.True(Math.Abs(y[r] - expected[r]) <= tol, $"{type} {rows}x{cols} row {r}: {y[r]} vs {expected[r]} (tolerance {tol:g3})");
        }
    }
}
