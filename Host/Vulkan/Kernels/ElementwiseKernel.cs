using System.Runtime.InteropServices;
using PeftHost.Vulkan.Runtime;

namespace PeftHost.Vulkan.Kernels;

/// <summary>
/// A shader computing y[i] = f(a[i], b[i]) over n floats (bindings a, b, y; push constant n; y may
/// alias a). <see cref="AddKernel"/> and <see cref="SiluMulKernel"/> are its two instances.
/// </summary>
public abstract class ElementwiseKernel
{
    private const uint WorkgroupSize = 64;

    [StructLayout(LayoutKind.Sequential)]
    private readonly record struct Push(uint N);

    private readonly VulkanComputePipeline _pipeline;
    private readonly uint _maxGroups;
    private readonly string _shader;

    /// <summary>Creates (or reuses) the pipeline of <paramref name="shader"/>.</summary>
    protected ElementwiseKernel(VulkanContext context, string shader)
    {
        ArgumentNullException.ThrowIfNull(context);
        _shader = shader;
        _pipeline = context.GetPipeline(new VulkanPipelineDescription(shader, 3, 0b100, 4, [WorkgroupSize]));
        _maxGroups = context.Device.MaxWorkgroupCount;
    }

    /// <summary>Records the operation for i &lt; <paramref name="n"/>.</summary>
    public void Record(VulkanCommandRecorder recorder, VulkanBuffer a, VulkanBuffer b, VulkanBuffer y, int n)
    {
        ArgumentNullException.ThrowIfNull(recorder);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(n);
        foreach ((VulkanBuffer buf, string role) in new[] { (a, "a"), (b, "b"), (y, "y") })
            VulkanGrid.Require(buf, (ulong)n * 4, role, _shader);
        (uint gx, uint gy) = VulkanGrid.Split(((ulong)n + WorkgroupSize - 1) / WorkgroupSize, _maxGroups);
        recorder.Dispatch(_pipeline, [a, b, y], new Push((uint)n), gx, gy);
    }
}
