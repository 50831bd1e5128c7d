using System.Runtime.InteropServices;
using PeftHost.Vulkan.Runtime;

namespace PeftHost.Vulkan.Kernels;

/// <summary>Y[t, i] = silu(GU[t, i]) GU[t, F + i]: Llama's gate over a fused gate|up projection.</summary>
public sealed class SwiGluKernel
{
    [StructLayout(LayoutKind.Sequential)]
    private readonly record struct Push(uint Tokens, uint F);

    private readonly VulkanComputePipeline _pipeline;
    private readonly uint _maxGroups;

    /// <summary>Creates (or reuses) the pipeline.</summary>
    public SwiGluKernel(VulkanContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        _pipeline = context.GetPipeline(new VulkanPipelineDescription("swiglu", 2, 0b10, 8, []));
        _maxGroups = context.Device.MaxWorkgroupCount;
    }

    /// <summary>Records the gate for <paramref name="tokens"/> rows of <paramref name="f"/> outputs.</summary>
    public void Record(VulkanCommandRecorder recorder, VulkanBuffer gateUp, VulkanBuffer y, int tokens, int f)
    {
        ArgumentNullException.ThrowIfNull(recorder);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(tokens);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(f);
        VulkanGrid.Require(gateUp, (ulong)tokens * (ulong)f * 8, "gate|up", "swiglu");
        VulkanGrid.Require(y, (ulong)tokens * (ulong)f * 4, "y", "swiglu");
        (uint gx, uint gy) = VulkanGrid.Split(((ulong)tokens * (ulong)f + 63) / 64, _maxGroups);
        recorder.Dispatch(_pipeline, [gateUp, y], new Push((uint)tokens, (uint)f), gx, gy);
    }
}
