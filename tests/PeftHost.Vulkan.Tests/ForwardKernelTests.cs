using PeftHost.Formats.Gguf;
using PeftHost.Vulkan.Kernels;
using PeftHost.Vulkan.Runtime;
using Xunit;

namespace PeftHost.Vulkan.Tests;

/// <summary>
/// The kernels of the device Llama forward against CPU references on random data, at odd sizes
/// (rows, tokens, heads not multiples of the tile or workgroup). Bounds: float32 summation of
/// a few hundred products of magnitude ~1 (1e-3 relative to the sum of |terms|, plus 1e-5).
/// </summary>
public sealed class ForwardKernelTests(VulkanFixture fixture)
{
    [Theory]
    [InlineData(GgmlType.F32, 37, 45, 5)]
    [InlineData(GgmlType.F32, 33, 70, 1)]
    [InlineData(GgmlType.F16, 35, 64, 33)]
    [InlineData(GgmlType.Q8_0, 37, 96, 7)]
    [InlineData(GgmlType.Q8_0, 65, 160, 40)]
    [InlineData(GgmlType.Q4_0, 37, 96, 3)]
    [InlineData(GgmlType.Q4_0, 31, 128, 65)]
    public void Matmul_matches_cpu_dequantize_then_multiply(GgmlType type, int rows, int cols, int tokens)
    {
        VulkanContext ctx = fixture.Full;
        float[] w = CpuReference.Random(rows * cols, rows + cols);
        byte[] enc = GgmlQuantization.Quantize(type, w);
        float[] wd = GgmlQuantization.Dequantize(type, enc);
        float[] x = CpuReference.Random(tokens * cols, tokens);
        float[] y0 = CpuReference.Random(tokens * rows, 9);
        // Both layouts; the row layout with the default token group and with one that does not divide the tokens.
        foreach ((MatVecLayout layout, uint group) in new[] { (MatVecLayout.WorkgroupPerRow, 8u), (MatVecLayout.RowPerInvocation, 8u), (MatVecLayout.RowPerInvocation, 3u) })
        {
            using VulkanBuffer wb = ctx.Upload<byte>(enc, "w");
            using VulkanBuffer xb = ctx.Upload<float>(x, "x");
            using VulkanBuffer yb = ctx.Upload<float>(y0, "y");
            using VulkanBuffer ya = ctx.Upload<float>(y0, "y acc");
            using (VulkanCommandRecorder rec = ctx.CreateRecorder())
            {
                new MatMulKernel(ctx, type, layout: layout, tokensPerInvocation: group).Record(rec, wb, xb, yb, rows, cols, tokens);
                new MatMulKernel(ctx, type, accumulate: true, layout: layout, tokensPerInvocation: group).Record(rec, wb, xb, ya, rows, cols, tokens);
                rec.Submit();
            }
            float[] got = yb.Download<float>();
            float[] gotAcc = ya.Download<float>();
            for (int t = 0; t < tokens; t++)
            {
                (double[] want, double[] abs) = CpuReference.MatVec(wd, x[(t * cols)..((t + 1) * cols)], rows, cols);
                for (int r = 0; r < rows; r++)
                {
                    double tol = 1e-5 + 1e-4 * abs[r];
                    Assert.True(Math.Abs(got[t * rows + r] - want[r]) <= tol, $"{layout}/{group} t {t} r {r}: {got[t * rows + r]} vs {want[r]}");
                    Assert.True(Math.Abs(gotAcc[t * rows + r] - (want[r] + y0[t * rows + r])) <= tol + 1e-6, $"{layout}/{group} acc t {t} r {r}");
                }
            }
        }
    }

    [Theory]
    [InlineData(GgmlType.F32)]
    [InlineData(GgmlType.F16)]
    [InlineData(GgmlType.Q8_0)]
    [InlineData(GgmlType.Q4_0)]
    public void Get_rows_dequantizes_the_selected_rows(GgmlType type)
    {
        VulkanContext ctx = fixture.Full;
        const int rows = 13, cols = 96;
        byte[] enc = GgmlQuantization.Quantize(type, CpuReference.Random(rows * cols, 3));
        float[] wd = GgmlQuantization.Dequantize(type, enc);
        int[] ids = [12, 0, 5, 5, 7];
        using VulkanBuffer wb = ctx.Upload<byte>(enc, "w");
        using VulkanBuffer ib = ctx.Upload<int>(ids, "ids");
        using VulkanBuffer yb = ctx.CreateBuffer((ulong)(ids.Length * cols * 4), "y");
        using (VulkanCommandRecorder rec = ctx.CreateRecorder())
        {
            new GetRowsKernel(ctx, type).Record(rec, wb, ib, yb, ids.Length, cols);
            rec.Submit();
        }
        float[] got = yb.Download<float>();
        for (int t = 0; t < ids.Length; t++)
            for (int k = 0; k < cols; k++)
                Assert.Equal(wd[ids[t] * cols + k], got[t * cols + k]);
    }

    [Fact]
    public void Swiglu_gates_the_up_half()
    {
        VulkanContext ctx = fixture.Full;
        const int tokens = 3, f = 37;
        float[] gu = CpuReference.Random(tokens * 2 * f, 4, 4f);
        using VulkanBuffer gb = ctx.Upload<float>(gu, "gu");
        using VulkanBuffer yb = ctx.CreateBuffer(tokens * f * 4, "y");
        using (VulkanCommandRecorder rec = ctx.CreateRecorder())
        {
            new SwiGluKernel(ctx).Record(rec, gb, yb, tokens, f);
            rec.Submit();
        }
        float[] got = yb.Download<float>();
        for (int t = 0; t < tokens; t++)
            for (int i = 0; i < f; i++)
                Assert.Equal(CpuReference.SiluMul(gu[t * 2 * f + i], gu[t * 2 * f + f + i]), got[t * f + i], 1e-5);
    }

    [Fact]
    public void Rope_kv_and_attention_match_a_cpu_reference_with_grouped_heads()
    {
        VulkanContext ctx = fixture.Full;
        const int heads = 6, kvHeads = 2, d = 10, capacity = 19, pos0 = 4, tokens = 3;
        int width = (heads + 2 * kvHeads) * d;
        // Fill the cache for positions 0..pos0-1 with a first call, then run `tokens` more.
        float[] first = CpuReference.Random(pos0 * width, 11);
        float[] second = CpuReference.Random(tokens * width, 12);
        using VulkanBuffer kc = ctx.CreateBuffer(capacity * kvHeads * d * 4, "k");
        using VulkanBuffer vc = ctx.CreateBuffer(capacity * kvHeads * d * 4, "v");
        using VulkanBuffer q = ctx.CreateBuffer(pos0 * heads * d * 4, "q");
        using VulkanBuffer o = ctx.CreateBuffer(tokens * heads * d * 4, "o");
        using VulkanBuffer qkv1 = ctx.Upload<float>(first, "qkv1");
        using VulkanBuffer qkv2 = ctx.Upload<float>(second, "qkv2");
        var rope = new RopeKvKernel(ctx);
        var attention = new AttentionKernel(ctx, capacity);
        using (VulkanCommandRecorder rec = ctx.CreateRecorder())
        {
            rope.Record(rec, qkv1, q, kc, vc, pos0, heads, kvHeads, d, 0, 10000);
            rope.Record(rec, qkv2, q, kc, vc, tokens, heads, kvHeads, d, pos0, 10000);
            attention.Record(rec, q, kc, vc, o, tokens, heads, kvHeads, d, pos0);
            rec.Submit();
        }
        float[] got = o.Download<float>();

        // CPU: interleaved RoPE of q and k rows, then causal softmax attention per head.
        var all = new float[(pos0 + tokens) * width];
        first.CopyTo(all, 0);
        second.CopyTo(all, first.Length);
        double[] Rot(int pos, int head)
        {
            var r = new double[d];
            for (int i = 0; i < d / 2; i++)
            {
                double theta = pos * Math.Pow(10000, -2.0 * i / d);
                double x0 = all[pos * width + head * d + 2 * i], x1 = all[pos * width + head * d + 2 * i + 1];
                r[2 * i] = x0 * Math.Cos(theta) - x1 * Math.Sin(theta);
                r[2 * i + 1] = x0 * Math.Sin(theta) + x1 * Math.Cos(theta);
            }
            return r;
        }
        for (int t = 0; t < tokens; t++)
        {
            int pos = pos0 + t;
            for (int h = 0; h < heads; h++)
            {
                int g = h / (heads / kvHeads);
                double[] qv = Rot(pos, h);
                var s = new double[pos + 1];
                for (int j = 0; j <= pos; j++)
                {
                    double[] kv = Rot(j, heads + g);
                    s[j] = qv.Zip(kv, (a, b) => a * b).Sum() / Math.Sqrt(d);
                }
                double m = s.Max();
                double z = s.Sum(v => Math.Exp(v - m));
                for (int e = 0; e < d; e++)
                {
                    double want = 0;
                    for (int j = 0; j <= pos; j++) want += Math.Exp(s[j] - m) / z * all[j * width + (heads + kvHeads + g) * d + e];
                    Assert.True(Math.Abs(got[(t * heads + h) * d + e] - want) < 1e-4, $"t {t} h {h} e {e}: {got[(t * heads + h) * d + e]} vs {want}");
                }
            }
        }
    }

    [Fact]
    public void Sampling_is_argmax_for_k1_and_stays_in_the_top_k()
    {
        VulkanContext ctx = fixture.Full;
        const int n = 1001;
        float[] logits = CpuReference.Random(2 * n, 21, 3f);
        logits[n + 777] = 50f;   // row 1's winner
        logits[n + 5] = 50f;     // a tie: the lowest index wins
        using VulkanBuffer lb = ctx.Upload<float>(logits, "logits");
        using VulkanBuffer ib = ctx.CreateBuffer(4, "id");
        var kernel = new SampleKernel(ctx);
        int Run(int offset, int k, float temperature, float u)
        {
            using VulkanCommandRecorder rec = ctx.CreateRecorder();
            kernel.Record(rec, lb, ib, n, offset, k, temperature, u);
            rec.Submit();
            return ib.Download<int>()[0];
        }
        int argmax = Array.IndexOf(logits, logits[..n].Max());
        Assert.Equal(argmax, Run(0, 1, 1f, 0.5f));
        Assert.Equal(5, Run(n, 1, 1f, 0.5f));
        var top = logits[..n].Select((v, i) => (v, i)).OrderByDescending(p => p.v).Take(8).Select(p => p.i).ToArray();
        var seen = new HashSet<int>();
        for (int i = 0; i < 16; i++) seen.Add(Run(0, 8, 5f, i / 16f));
        Assert.Subset(top.ToHashSet(), seen);
        Assert.True(seen.Count > 2);
        Assert.Equal(top[0], Run(0, 8, 5f, 0f));
    }
}
