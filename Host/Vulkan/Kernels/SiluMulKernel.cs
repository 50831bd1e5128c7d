using System.Runtime.InteropServices;
using PeftHost.Vulkan.Runtime;

namespace PeftHost.Vulkan.Kernels;

/// <summary>y = silu(a) * b elementwise: the gated activation of Llama's MLP (SwiGLU).</summary>
public sealed class SiluMulKernel
{
    private const uint WorkgroupSize = 64;

    [StructLayout(LayoutKind.Sequential)]
    private readonly record struct Push(uint N);

    private readonly VulkanComputePipeline _pipeline;
    private readonly uint _maxGroups;

    /// <summary>Creates (or reuses) the pipeline.</summary>
    public SiluMulKernel(VulkanContext context)
    {
        _pipeline = context.GetPipeline(new VulkanPipelineDescription("silu_mul", 3, 0b100, 4, [WorkgroupSize]));
        _maxGroups = context.Device.MaxWorkgroupCount;
    }

    /// <summary>Records y[i] = a[i] / (1 + exp(-a[i])) * b[i] for i &lt; <paramref name="n"/>.</summary>
    public void Record(VulkanCommandRecorder recorder, VulkanBuffer a, VulkanBuffer b, VulkanBuffer y, int n)
    {
        ArgumentNullException.ThrowIfNull(recorder);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(n);
        foreach ((VulkanBuffer buf, string role) in new[] { (a, "a"), (b, "b"), (y, "y") })
        {
            VulkanGrid.Require(buf, (ulong)n * 4, role, "silu_mul");
        }
        (uint gx, uint gy) = VulkanGrid.Split(((ulong)n + WorkgroupSize - 1) / WorkgroupSize, _maxGroups);
        recorder.Dispatch(_pipeline, [a, b, y], new Push((uint)n), gx, gy);
    }
}
