using System.Runtime.InteropServices;
using PeftHost.Vulkan.Runtime;

namespace PeftHost.Vulkan.Kernels;

/// <summary>
/// Splits a fused q|k|v projection [tokens, (heads + 2 kvHeads) headDim] at positions pos0..: GGML's
/// normal (interleaved) RoPE on q into Q and on k into the K cache rows, v into the V cache rows.
/// </summary>
public sealed class RopeKvKernel
{
    [StructLayout(LayoutKind.Sequential)]
    private readonly record struct Push(uint Tokens, uint Heads, uint KvHeads, uint HeadDim, uint Pos0, float Log2Base);

    private readonly VulkanComputePipeline _pipeline;
    private readonly uint _maxGroups;

    /// <summary>Creates (or reuses) the pipeline.</summary>
    public RopeKvKernel(VulkanContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        _pipeline = context.GetPipeline(new VulkanPipelineDescription("rope_kv", 4, 0b1110, 24, []));
        _maxGroups = context.Device.MaxWorkgroupCount;
    }

    /// <summary>Records the split; the caches must hold rows up to pos0 + tokens.</summary>
    public void Record(VulkanCommandRecorder recorder, VulkanBuffer qkv, VulkanBuffer q, VulkanBuffer kCache, VulkanBuffer vCache,
        int tokens, int heads, int kvHeads, int headDim, int pos0, double freqBase)
    {
        ArgumentNullException.ThrowIfNull(recorder);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(tokens);
        ArgumentOutOfRangeException.ThrowIfNegative(pos0);
        if (headDim <= 0 || headDim % 2 != 0) throw new ArgumentOutOfRangeException(nameof(headDim), headDim, "RoPE needs a positive, even head dimension.");
        VulkanGrid.Require(qkv, (ulong)tokens * (ulong)(heads + 2 * kvHeads) * (ulong)headDim * 4, "qkv", "rope_kv");
        VulkanGrid.Require(q, (ulong)tokens * (ulong)heads * (ulong)headDim * 4, "q", "rope_kv");
        ulong cacheBytes = (ulong)(pos0 + tokens) * (ulong)kvHeads * (ulong)headDim * 4;
        VulkanGrid.Require(kCache, cacheBytes, "K cache", "rope_kv");
        VulkanGrid.Require(vCache, cacheBytes, "V cache", "rope_kv");
        ulong pairs = (ulong)tokens * (ulong)(heads + 2 * kvHeads) * (ulong)(headDim / 2);
        (uint gx, uint gy) = VulkanGrid.Split((pairs + 63) / 64, _maxGroups);
        recorder.Dispatch(_pipeline, [qkv, q, kCache, vCache],
            new Push((uint)tokens, (uint)heads, (uint)kvHeads, (uint)headDim, (uint)pos0, (float)Math.Log2(freqBase)), gx, gy);
    }
}
