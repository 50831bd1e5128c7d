using PeftHost.Formats.Gguf;
using PeftHost.Vulkan.Llama;
using PeftHost.Vulkan.Runtime;
using Xunit;

namespace PeftHost.Vulkan.Tests;

/// <summary>
/// A device matrix with unmerged LoRA terms (two adapters on different parts of a fused matrix, each
/// scaled) against the CPU: y = W x + Σ scale · B (A x), for one token (matrix-vector) and a prefill
/// chunk (matrix-matrix), on f32 and q4_0 bases.
/// </summary>
public sealed class LowRankKernelTests(VulkanFixture fixture)
{
    [Theory]
    [InlineData(GgmlType.F32, 1)]
    [InlineData(GgmlType.F32, 5)]
    [InlineData(GgmlType.Q4_0, 1)]
    [InlineData(GgmlType.Q4_0, 5)]
    public void Fused_low_rank_terms_add_scaled_b_a_x_to_their_rows(GgmlType type, int tokens)
    {
        VulkanContext ctx = fixture.Full;
        const int rows = 48, cols = 64;               // a fused matrix: part 0 rows 0..31, part 1 rows 32..47
        float[] w = CpuReference.Random(rows * cols, 1);
        byte[] encoded = GgmlQuantization.Quantize(type, w);
        float[] wq = GgmlQuantization.Dequantize(type, encoded);
        var p0 = new LoraPair(4, cols, 32, CpuReference.Random(4 * cols, 2), CpuReference.Random(32 * 4, 3));
        var p1 = new LoraPair(3, cols, 16, CpuReference.Random(3 * cols, 4), CpuReference.Random(16 * 3, 5));
        (LoraPair Pair, float Scale, int RowOffset)[] terms = [(p0, 0.75f, 0), (p1, -1.5f, 32)];
        float[] x = CpuReference.Random(tokens * cols, 6);

        var expected = new double[tokens * rows];
        for (int t = 0; t < tokens; t++)
        {
            for (int r = 0; r < rows; r++)
            {
                double s = 0;
                for (int c = 0; c < cols; c++) s += wq[r * cols + c] * x[t * cols + c];
                expected[t * rows + r] = s;
            }
            foreach ((LoraPair p, float scale, int offset) in terms)
            {
                var ax = new double[p.Rank];
                for (int k = 0; k < p.Rank; k++)
                    for (int c = 0; c < cols; c++) ax[k] += p.A[k * cols + c] * x[t * cols + c];
                for (int i = 0; i < p.Out; i++)
                {
                    double d = 0;
                    for (int k = 0; k < p.Rank; k++) d += p.B[i * p.Rank + k] * ax[k];
                    expected[t * rows + offset + i] += scale * d;
                }
            }
        }

        using var matrix = new DeviceMatrix(ctx, ctx.Upload<byte>(encoded, "W"), type, rows, cols);
        matrix.SetLowRank(DeviceLowRank.Stack(ctx, terms, rows, cols, maxTokens: 8));
        Assert.Equal(8, matrix.LowRank!.Rank);        // 4 + 3 padded to the vector width
        using VulkanBuffer xb = ctx.Upload<float>(x, "x");
        using VulkanBuffer yb = ctx.CreateBuffer((ulong)(tokens * rows * 4), "y");
        using (VulkanCommandRecorder rec = ctx.CreateRecorder())
        {
            matrix.Record(rec, xb, yb, tokens, accumulate: false);
            Assert.Equal(3, rec.DispatchCount);       // the product, A x, B (A x)
            rec.Submit();
        }
        float[] y = yb.Download<float>();
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(y[i] - expected[i]) < 1e-4 * (1 + Math.Abs(expected[i])), $"element {i}: {y[i]} vs {expected[i]}");

        // Removing the terms gives the base product again.
        matrix.SetLowRank(null);
        using (VulkanCommandRecorder rec = ctx.CreateRecorder())
        {
            matrix.Record(rec, xb, yb, tokens, accumulate: false);
            rec.Submit();
        }
        float[] plain = yb.Download<float>();
        for (int r = 0; r < rows; r++)
        {
            double s = 0;
            for (int c = 0; c < cols; c++) s += wq[r * cols + c] * x[c];
            Assert.True(Math.Abs(plain[r] - s) < 1e-4 * (1 + Math.Abs(s)), $"row {r} without LoRA");
        }
    }

    [Fact]
    public void A_pair_that_does_not_fit_its_part_is_refused()
    {
        var p = new LoraPair(2, 64, 32, new float[128], new float[64]);
        Assert.Throws<ArgumentException>(() => DeviceLowRank.Stack(fixture.Full, [(p, 1f, 20)], 48, 64, 4));
    }
}
