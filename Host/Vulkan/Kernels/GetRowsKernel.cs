using System.Runtime.InteropServices;
using PeftHost.Formats.Gguf;
using PeftHost.Vulkan.Runtime;

namespace PeftHost.Vulkan.Kernels;

/// <summary>Embedding lookup: Y[t, :] = W[ids[t], :] as float32, W in a GGML type's layout.</summary>
public sealed class GetRowsKernel
{
    [StructLayout(LayoutKind.Sequential)]
    private readonly record struct Push(uint Tokens, uint Cols);

    private readonly VulkanComputePipeline _pipeline;
    private readonly uint _maxGroups;

    /// <summary>Creates (or reuses) the pipeline for <paramref name="type"/>.</summary>
    public GetRowsKernel(VulkanContext context, GgmlType type)
    {
        ArgumentNullException.ThrowIfNull(context);
        Type = type;
        _pipeline = context.GetPipeline(new VulkanPipelineDescription($"get_rows_{GgmlTypeTraits.Name(type)}", 3, 0b100, 8, []));
        _maxGroups = context.Device.MaxWorkgroupCount;
    }

    /// <summary>The weight type.</summary>
    public GgmlType Type { get; }

    /// <summary>Records the lookup of <paramref name="tokens"/> int32 ids (ids must be below the row count; not checked on the device).</summary>
    public void Record(VulkanCommandRecorder recorder, VulkanBuffer weights, VulkanBuffer ids, VulkanBuffer y, int tokens, int cols)
    {
        ArgumentNullException.ThrowIfNull(recorder);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(tokens);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(cols);
        VulkanGrid.Require(ids, (ulong)tokens * 4, "ids", "get_rows");
        VulkanGrid.Require(y, (ulong)tokens * (ulong)cols * 4, "y", "get_rows");
        ulong n = (ulong)tokens * (ulong)cols;
        (uint gx, uint gy) = VulkanGrid.Split((n + 63) / 64, _maxGroups);
        recorder.Dispatch(_pipeline, [weights, ids, y], new Push((uint)tokens, (uint)cols), gx, gy);
    }
}
