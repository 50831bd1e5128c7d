using System.Runtime.InteropServices;
using PeftHost.Vulkan.Runtime;

namespace PeftHost.Vulkan.Kernels;

/// <summary>
/// Rotary position embedding over x [tokens, heads, headDim] with one int32 position per token:
/// each pair rotates by pos * base^(-2i/headDim). The style is a specialization constant.
/// </summary>
public sealed class RopeKernel
{
    private const uint WorkgroupSize = 64;

    [StructLayout(LayoutKind.Sequential)]
    private readonly record struct Push(uint Tokens, uint Heads, uint HeadDim, float Log2Base);

    private readonly VulkanComputePipeline _pipeline;
    private readonly uint _maxGroups;

    /// <summary>Creates (or reuses) the pipeline for <paramref name="style"/>.</summary>
    public RopeKernel(VulkanContext context, RopeStyle style)
    {
        Style = style;
        _pipeline = context.GetPipeline(new VulkanPipelineDescription("rope", 3, 0b100, 16, [WorkgroupSize, style == RopeStyle.Neox ? 1u : 0u]));
        _maxGroups = context.Device.MaxWorkgroupCount;
    }

    /// <summary>The pairing style.</summary>
    public RopeStyle Style { get; }

    /// <summary>Records y = rope(x) (y may be x itself for in-place use).</summary>
    public void Record(VulkanCommandRecorder recorder, VulkanBuffer x, VulkanBuffer positions, VulkanBuffer y,
        int tokens, int heads, int headDim, float freqBase)
    {
        ArgumentNullException.ThrowIfNull(recorder);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(tokens);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(heads);
        if (headDim <= 0 || headDim % 2 != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(headDim), headDim, "RoPE needs a positive, even head dimension.");
        }
        ulong elements = (ulong)tokens * (ulong)heads * (ulong)headDim;
        VulkanGrid.Require(x, elements * 4, "x", "rope");
        VulkanGrid.Require(positions, (ulong)tokens * 4, "positions", "rope");
        VulkanGrid.Require(y, elements * 4, "y", "rope");
        ulong pairs = elements / 2;
        (uint gx, uint gy) = VulkanGrid.Split((pairs + WorkgroupSize - 1) / WorkgroupSize, _maxGroups);
        recorder.Dispatch(_pipeline, [x, positions, y], new Push((uint)tokens, (uint)heads, (uint)headDim, (float)Math.Log2(freqBase)), gx, gy);
    }
}
