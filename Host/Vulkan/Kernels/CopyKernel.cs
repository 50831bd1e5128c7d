using System.Runtime.InteropServices;
using PeftHost.Vulkan.Runtime;

namespace PeftHost.Vulkan.Kernels;

/// <summary>y = x for 16-byte vectors: the shader half of the memory bandwidth probe.</summary>
public sealed class CopyKernel
{
    [StructLayout(LayoutKind.Sequential)]
    private readonly record struct Push(uint N4);

    private readonly VulkanComputePipeline _pipeline;
    private readonly uint _maxGroups;

    /// <summary>Creates (or reuses) the pipeline.</summary>
    public CopyKernel(VulkanContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        _pipeline = context.GetPipeline(new VulkanPipelineDescription("copy", 2, 0b10, 4, []));
        _maxGroups = context.Device.MaxWorkgroupCount;
    }

    /// <summary>Records the copy of <paramref name="bytes"/> bytes (a multiple of 16).</summary>
    public void Record(VulkanCommandRecorder recorder, VulkanBuffer x, VulkanBuffer y, ulong bytes)
    {
        ArgumentNullException.ThrowIfNull(recorder);
        if (bytes == 0 || bytes % 16 != 0) throw new ArgumentOutOfRangeException(nameof(bytes), bytes, "A positive multiple of 16 bytes.");
        VulkanGrid.Require(x, bytes, "x", "copy");
        VulkanGrid.Require(y, bytes, "y", "copy");
        (uint gx, uint gy) = VulkanGrid.Split((bytes / 16 + 63) / 64, _maxGroups);
        recorder.Dispatch(_pipeline, [x, y], new Push((uint)(bytes / 16)), gx, gy);
    }
}
