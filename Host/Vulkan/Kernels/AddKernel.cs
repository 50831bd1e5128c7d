using System.Runtime.InteropServices;
using PeftHost.Vulkan.Runtime;

namespace PeftHost.Vulkan.Kernels;

/// <summary>y = a + b elementwise (residual connections; y may alias a).</summary>
public sealed class AddKernel
{
    private const uint WorkgroupSize = 64;

    [StructLayout(LayoutKind.Sequential)]
    private readonly record struct Push(uint N);

    private readonly VulkanComputePipeline _pipeline;
    private readonly uint _maxGroups;

    /// <summary>Creates (or reuses) the pipeline.</summary>
    public AddKernel(VulkanContext context)
    {
        _pipeline = context.GetPipeline(new VulkanPipelineDescription("add", 3, 0b100, 4, [WorkgroupSize]));
        _maxGroups = context.Device.MaxWorkgroupCount;
    }

    /// <summary>Records y[i] = a[i] + b[i] for i &lt; <paramref name="n"/>.</summary>
    public void Record(VulkanCommandRecorder recorder, VulkanBuffer a, VulkanBuffer b, VulkanBuffer y, int n)
    {
        ArgumentNullException.ThrowIfNull(recorder);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(n);
        foreach ((VulkanBuffer buf, string role) in new[] { (a, "a"), (b, "b"), (y, "y") })
        {
            VulkanGrid.Require(buf, (ulong)n * 4, role, "add");
        }
        (uint gx, uint gy) = VulkanGrid.Split(((ulong)n + WorkgroupSize - 1) / WorkgroupSize, _maxGroups);
        recorder.Dispatch(_pipeline, [a, b, y], new Push((uint)n), gx, gy);
    }
}
