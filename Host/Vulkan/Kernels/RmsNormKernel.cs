using System.Runtime.InteropServices;
using PeftHost.Vulkan.Runtime;

namespace PeftHost.Vulkan.Kernels;

/// <summary>RMSNorm per row: y = x / sqrt(mean(x²) + eps) * weight (Llama's norm). One workgroup per row.</summary>
public sealed class RmsNormKernel
{
    [StructLayout(LayoutKind.Sequential)]
    private readonly record struct Push(uint Rows, uint N, float Eps);

    private readonly VulkanComputePipeline _pipeline;
    private readonly uint _maxGroups;

    /// <summary>Creates (or reuses) the pipeline.</summary>
    public RmsNormKernel(VulkanContext context, uint workgroupSize = 64)
    {
        if (!uint.IsPow2(workgroupSize) || workgroupSize > context.Device.MaxWorkgroupInvocations)
        {
            throw new ArgumentOutOfRangeException(nameof(workgroupSize), workgroupSize, "A power of two within the device's workgroup limit.");
        }
        _pipeline = context.GetPipeline(new VulkanPipelineDescription("rmsnorm", 3, 0b100, 12, [workgroupSize]));
        _maxGroups = context.Device.MaxWorkgroupCount;
    }

    /// <summary>Records the norm of <paramref name="rows"/> rows of <paramref name="n"/> values.</summary>
    public void Record(VulkanCommandRecorder recorder, VulkanBuffer x, VulkanBuffer weight, VulkanBuffer y, int rows, int n, float eps)
    {
        ArgumentNullException.ThrowIfNull(recorder);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(rows);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(n);
        VulkanGrid.Require(x, (ulong)rows * (ulong)n * 4, "x", "rmsnorm");
        VulkanGrid.Require(weight, (ulong)n * 4, "weight", "rmsnorm");
        VulkanGrid.Require(y, (ulong)rows * (ulong)n * 4, "y", "rmsnorm");
        (uint gx, uint gy) = VulkanGrid.Split((ulong)rows, _maxGroups);
        recorder.Dispatch(_pipeline, [x, weight, y], new Push((uint)rows, (uint)n, eps), gx, gy);
    }
}
