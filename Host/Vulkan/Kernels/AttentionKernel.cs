using System.Runtime.InteropServices;
using PeftHost.Vulkan.Runtime;

namespace PeftHost.Vulkan.Kernels;

/// <summary>
/// Causal grouped-query attention of tokens at positions pos0.. over the KV cache: one workgroup
/// per (token, head), scores in shared memory (so the cache capacity is bounded by <see cref="MaxKeys"/>).
/// </summary>
public sealed class AttentionKernel
{
    private const uint WorkgroupSize = 64;
    private const uint MaxHeadDim = 256;

    [StructLayout(LayoutKind.Sequential)]
    private readonly record struct Push(uint Tokens, uint Heads, uint KvHeads, uint HeadDim, uint Pos0, float Scale);

    private readonly VulkanComputePipeline _pipeline;
    private readonly uint _maxGroups;

    /// <summary>Creates (or reuses) the pipeline for caches of up to <paramref name="maxKeys"/> positions.</summary>
    public AttentionKernel(VulkanContext context, int maxKeys)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxKeys);
        // Scores, the query and the reduction share the device's shared memory (16 KiB is the least Vulkan guarantees).
        if (maxKeys > 3072)
        {
            throw new NotSupportedException($"The Vulkan attention kernel keeps scores in shared memory: at most 3072 cache positions, {maxKeys} asked.");
        }
        MaxKeys = maxKeys;
        _pipeline = context.GetPipeline(new VulkanPipelineDescription("attention", 4, 0b1000, 24, [WorkgroupSize, (uint)maxKeys, MaxHeadDim]));
        _maxGroups = context.Device.MaxWorkgroupCount;
    }

    /// <summary>The largest number of cache positions attended to.</summary>
    public int MaxKeys { get; }

    /// <summary>Records O = softmax(Q Kᵀ scale, causal) V for <paramref name="tokens"/> queries.</summary>
    public void Record(VulkanCommandRecorder recorder, VulkanBuffer q, VulkanBuffer kCache, VulkanBuffer vCache, VulkanBuffer output,
        int tokens, int heads, int kvHeads, int headDim, int pos0)
    {
        ArgumentNullException.ThrowIfNull(recorder);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(tokens);
        if (kvHeads <= 0 || heads % kvHeads != 0) throw new ArgumentException($"attention: {heads} heads are not a multiple of {kvHeads} KV heads.");
        if (headDim <= 0 || headDim > MaxHeadDim) throw new ArgumentOutOfRangeException(nameof(headDim), headDim, $"attention: head dimension up to {MaxHeadDim}.");
        if (pos0 + tokens > MaxKeys) throw new ArgumentException($"attention: positions up to {pos0 + tokens} exceed the kernel's {MaxKeys}.");
        ulong qBytes = (ulong)tokens * (ulong)heads * (ulong)headDim * 4;
        VulkanGrid.Require(q, qBytes, "q", "attention");
        VulkanGrid.Require(output, qBytes, "output", "attention");
        ulong cacheBytes = (ulong)(pos0 + tokens) * (ulong)kvHeads * (ulong)headDim * 4;
        VulkanGrid.Require(kCache, cacheBytes, "K cache", "attention");
        VulkanGrid.Require(vCache, cacheBytes, "V cache", "attention");
        (uint gx, uint gy) = VulkanGrid.Split((ulong)tokens * (ulong)heads, _maxGroups);
        recorder.Dispatch(_pipeline, [q, kCache, vCache, output],
            new Push((uint)tokens, (uint)heads, (uint)kvHeads, (uint)headDim, (uint)pos0, (float)(1.0 / Math.Sqrt(headDim))), gx, gy);
    }
}
