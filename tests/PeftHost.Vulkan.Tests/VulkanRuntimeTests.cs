using PeftHost.Formats.Gguf;
using PeftHost.Vulkan.Kernels;
using PeftHost.Vulkan.Runtime;
using Xunit;

namespace PeftHost.Vulkan.Tests;

/// <summary>The device, buffers, recorder barriers and validation.</summary>
public sealed class VulkanRuntimeTests(VulkanFixture fixture)
{
    [Fact]
    public void Device_is_described()
    {
        VulkanDeviceInfo d = fixture.Full.Device;
        Assert.False(string.IsNullOrEmpty(d.Name));
        Assert.True(d.ApiVersion >= new Version(1, 1));
        Assert.True(d.HasComputeQueue);
        Assert.True(d.SubgroupSize >= 1);
        Assert.NotEmpty(d.MemoryHeaps);
        Assert.Contains(d, fixture.Full.AvailableDevices);
        Assert.Equal(VulkanFeatures.None, fixture.Fallback.EnabledFeatures);
        Assert.Equal(fixture.Full.Device.SupportedFeatures, fixture.Full.EnabledFeatures);
        // CI installs the validation layer; the tests then run with it.
        Assert.Equal(VulkanInstance.IsValidationLayerInstalled(), fixture.Full.ValidationEnabled);
    }

    [Fact]
    public void Upload_and_download_round_trip_across_staging_chunks()
    {
        VulkanContext ctx = fixture.Full;
        float[] data = CpuReference.Random((20 << 20) / 4 + 3, 61);   // more than one 16 MiB staging chunk
        using VulkanBuffer b = ctx.Upload<float>(data, "big");
        Assert.Equal(data, b.Download<float>());
        var part = new float[5];
        b.Download<float>(part, 4UL * 1000);
        Assert.Equal(data[1000..1005], part);
        b.Upload<float>([1f, 2f], 4UL * 7);
        b.Download<float>(part.AsSpan(0, 2), 4UL * 7);
        Assert.Equal([1f, 2f], part[..2]);
        Assert.Throws<ArgumentOutOfRangeException>(() => b.Download<float>(new float[2], b.Size - 4));
        Assert.Throws<ArgumentOutOfRangeException>(() => ctx.CreateBuffer(0, "empty"));
    }

    [Fact]
    public void Independent_dispatches_share_no_barrier_and_dependent_ones_get_one()
    {
        VulkanContext ctx = fixture.Full;
        using VulkanBuffer a = ctx.Upload<float>([1f, 2f], "a");
        using VulkanBuffer b = ctx.Upload<float>([10f, 20f], "b");
        using VulkanBuffer c = ctx.CreateBuffer(8, "c");
        using VulkanBuffer d = ctx.CreateBuffer(8, "d");
        using VulkanBuffer e = ctx.CreateBuffer(8, "e");
        var add = new AddKernel(ctx);
        using VulkanCommandRecorder rec = ctx.CreateRecorder();
        add.Record(rec, a, b, c, 2);    // c = a + b
        add.Record(rec, b, b, d, 2);    // d = 2b: reads only what is not being written
        Assert.Equal(0, rec.BarrierCount);
        add.Record(rec, c, d, e, 2);    // reads c and d: needs a barrier
        Assert.Equal(1, rec.BarrierCount);
        add.Record(rec, e, a, a, 2);    // reads e (written) and overwrites a (read earlier)
        Assert.Equal(2, rec.BarrierCount);
        Assert.Equal(4, rec.DispatchCount);
        rec.Submit();
        Assert.Equal([31f, 62f], e.Download<float>());
        Assert.Equal([32f, 64f], a.Download<float>());
        Assert.Throws<InvalidOperationException>(() => add.Record(rec, a, b, c, 2));
    }

    [Fact]
    public void A_recorded_layer_step_runs_in_one_command_buffer_and_can_be_resubmitted()
    {
        VulkanContext ctx = fixture.Full;
        const int n = 96, ffn = 160;
        float[] x = CpuReference.Random(n, 71);
        float[] norm = CpuReference.Random(n, 72);
        float[] gate = CpuReference.Random(ffn * n, 73);
        float[] up = CpuReference.Random(ffn * n, 74);
        float[] down = CpuReference.Random(n * ffn, 75);
        byte[] gateQ = GgmlQuantization.Quantize(GgmlType.Q8_0, gate);
        byte[] upQ = GgmlQuantization.Quantize(GgmlType.Q4_0, up);
        byte[] downQ = GgmlQuantization.Quantize(GgmlType.Q8_0, down);

        using VulkanBuffer xb = ctx.Upload<float>(x, "x");
        using VulkanBuffer nb = ctx.Upload<float>(norm, "norm");
        using VulkanBuffer gb = ctx.Upload<byte>(gateQ, "gate");
        using VulkanBuffer ub = ctx.Upload<byte>(upQ, "up");
        using VulkanBuffer db = ctx.Upload<byte>(downQ, "down");
        using VulkanBuffer h = ctx.CreateBuffer(n * 4, "h");
        using VulkanBuffer g = ctx.CreateBuffer(ffn * 4, "g");
        using VulkanBuffer u = ctx.CreateBuffer(ffn * 4, "u");
        using VulkanBuffer act = ctx.CreateBuffer(ffn * 4, "act");
        using VulkanBuffer o = ctx.CreateBuffer(n * 4, "o");
        using VulkanBuffer result = ctx.CreateBuffer(n * 4, "result");

        using VulkanCommandRecorder rec = ctx.CreateRecorder();
        new RmsNormKernel(ctx).Record(rec, xb, nb, h, 1, n, 1e-5f);
        new MatVecKernel(ctx, GgmlType.Q8_0).Record(rec, gb, h, g, ffn, n);
        new MatVecKernel(ctx, GgmlType.Q4_0).Record(rec, ub, h, u, ffn, n);
        new SiluMulKernel(ctx).Record(rec, g, u, act, ffn);
        new MatVecKernel(ctx, GgmlType.Q8_0).Record(rec, db, act, o, n, ffn);
        new AddKernel(ctx).Record(rec, xb, o, result, n);
        Assert.Equal(6, rec.DispatchCount);
        Assert.Equal(4, rec.BarrierCount);   // gate and up run together after the norm
        rec.Submit();
        float[] first = result.Download<float>();
        rec.Submit();
        Assert.Equal(first, result.Download<float>());

        double[] hr = CpuReference.RmsNorm(x, norm, 1, n, 1e-5f);
        float[] hf = hr.Select(v => (float)v).ToArray();
        double[] gr = CpuReference.MatVec(GgmlQuantization.Dequantize(GgmlType.Q8_0, gateQ), hf, ffn, n).Y;
        double[] ur = CpuReference.MatVec(GgmlQuantization.Dequantize(GgmlType.Q4_0, upQ), hf, ffn, n).Y;
        float[] ar = gr.Zip(ur, (p, q) => (float)CpuReference.SiluMul((float)p, (float)q)).ToArray();
        double[] or = CpuReference.MatVec(GgmlQuantization.Dequantize(GgmlType.Q8_0, downQ), ar, n, ffn).Y;
        for (int i = 0; i < n; i++)
        {
            double expected = x[i] + or[i];
            Assert.True(Math.Abs(first[i] - expected) <= 1e-4 * (1 + Math.Abs(expected)), $"{i}: {first[i]} vs {expected}");
        }
    }

    [Fact]
    public void Validation_errors_fail_loudly()
    {
        Assert.True(VulkanInstance.IsValidationLayerInstalled(),
            "The Khronos validation layer is not installed (apt-get install -y vulkan-validationlayers); CI runs the Vulkan tests with it.");
        using VulkanContext ctx = VulkanContext.Create(new VulkanContextOptions { Validation = VulkanValidation.Required });
        Assert.True(ctx.ValidationEnabled);
        // matvec reads 3 bindings; a layout with 2 is a usage error the layer reports.
        VulkanValidationException e = Assert.Throws<VulkanValidationException>(() =>
            ctx.GetPipeline(new VulkanPipelineDescription("matvec_f32", 2, 0, 8, [32])));
        Assert.NotEmpty(e.Messages);
    }

    [Fact]
    public void Device_override_by_name_and_index()
    {
        VulkanDeviceInfo current = fixture.Full.Device;
        using (VulkanContext byIndex = VulkanContext.Create(new VulkanContextOptions { Device = current.Index.ToString(System.Globalization.CultureInfo.InvariantCulture), Validation = VulkanValidation.Off }))
        {
            Assert.Equal(current.Name, byIndex.Device.Name);
        }
        string part = current.Name.Split(' ')[0].ToUpperInvariant();
        using (VulkanContext byName = VulkanContext.Create(new VulkanContextOptions { Device = part, Validation = VulkanValidation.Off }))
        {
            Assert.Equal(current.Name, byName.Device.Name);
        }
        VulkanException e = Assert.Throws<VulkanException>(() => VulkanContext.Create(new VulkanContextOptions { Device = "no-such-gpu", Validation = VulkanValidation.Off }));
        Assert.Contains("no-such-gpu", e.Message);
        Assert.Contains(current.Name, e.Message);
    }
}
