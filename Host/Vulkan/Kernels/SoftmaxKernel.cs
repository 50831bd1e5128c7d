using System.Runtime.InteropServices;
using PeftHost.Vulkan.Runtime;

namespace PeftHost.Vulkan.Kernels;

/// <summary>Row-wise softmax, stabilised by subtracting the row maximum. One workgroup per row.</summary>
public sealed class SoftmaxKernel
{
    [StructLayout(LayoutKind.Sequential)]
    private readonly record struct Push(uint Rows, uint N);

    private readonly VulkanComputePipeline _pipeline;
    private readonly uint _maxGroups;

    /// <summary>Creates (or reuses) the pipeline.</summary>
    public SoftmaxKernel(VulkanContext context, uint workgroupSize = 64)
    {
        if (!uint.IsPow2(workgroupSize) || workgroupSize > context.Device.MaxWorkgroupInvocations)
        {
            throw new ArgumentOutOfRangeException(nameof(workgroupSize), workgroupSize, "A power of two within the device's workgroup limit.");
        }
        _pipeline = context.GetPipeline(new VulkanPipelineDescription("softmax", 2, 0b10, 8, [workgroupSize]));
        _maxGroups = context.Device.MaxWorkgroupCount;
    }

    /// <summary>Records y = softmax(x) over each of <paramref name="rows"/> rows of <paramref name="n"/> values.</summary>
    public void Record(VulkanCommandRecorder recorder, VulkanBuffer x, VulkanBuffer y, int rows, int n)
    {
        ArgumentNullException.ThrowIfNull(recorder);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(rows);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(n);
        VulkanGrid.Require(x, (ulong)rows * (ulong)n * 4, "x", "softmax");
        VulkanGrid.Require(y, (ulong)rows * (ulong)n * 4, "y", "softmax");
        (uint gx, uint gy) = VulkanGrid.Split((ulong)rows, _maxGroups);
        recorder.Dispatch(_pipeline, [x, y], new Push((uint)rows, (uint)n), gx, gy);
    }
}
