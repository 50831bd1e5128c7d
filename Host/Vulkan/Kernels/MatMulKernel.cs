using System.Runtime.InteropServices;
using PeftHost.Formats.Gguf;
using PeftHost.Vulkan.Runtime;

namespace PeftHost.Vulkan.Kernels;

/// <summary>
/// Y[tokens, rows] (+)= X[tokens, cols] W[rows, cols]ᵀ for prefill, W in a GGML type's block layout:
/// 32 x 32 output tiles per workgroup with W and X slices staged in shared memory (each weight
/// block dequantized once per tile of 32 tokens). Any sizes; quantized cols must be whole blocks.
/// </summary>
public sealed class MatMulKernel
{
    private const uint Tile = 32;

    [StructLayout(LayoutKind.Sequential)]
    private readonly record struct Push(uint Rows, uint Cols, uint Tokens);

    private readonly VulkanComputePipeline _pipeline;
    private readonly uint _maxGroups;

    /// <summary>Creates (or reuses) the pipeline for <paramref name="type"/>; <paramref name="accumulate"/> adds to Y.</summary>
    public MatMulKernel(VulkanContext context, GgmlType type, bool accumulate = false)
    {
        ArgumentNullException.ThrowIfNull(context);
        Type = type;
        _pipeline = context.GetPipeline(new VulkanPipelineDescription($"matmul_{GgmlTypeTraits.Name(type)}", 3, 0b100, 12, [accumulate ? 1u : 0u]));
        _maxGroups = context.Device.MaxWorkgroupCount;
    }

    /// <summary>The weight type.</summary>
    public GgmlType Type { get; }

    /// <summary>Records the product.</summary>
    public void Record(VulkanCommandRecorder recorder, VulkanBuffer weights, VulkanBuffer x, VulkanBuffer y, int rows, int cols, int tokens)
    {
        ArgumentNullException.ThrowIfNull(recorder);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(rows);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(cols);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(tokens);
        string name = $"matmul {GgmlTypeTraits.Name(Type)}";
        if (cols % GgmlTypeTraits.BlockSize(Type) != 0)
        {
            throw new ArgumentException($"{name}: cols {cols} must be a multiple of the block size {GgmlTypeTraits.BlockSize(Type)}.");
        }
        VulkanGrid.Require(weights, (ulong)GgmlTypeTraits.ByteCount(Type, cols) * (ulong)rows, "weight", name);
        VulkanGrid.Require(x, (ulong)tokens * (ulong)cols * 4, "x", name);
        VulkanGrid.Require(y, (ulong)tokens * (ulong)rows * 4, "y", name);
        uint gx = ((uint)rows + Tile - 1) / Tile;
        uint gy = ((uint)tokens + Tile - 1) / Tile;
        if (gx > _maxGroups || gy > _maxGroups)
        {
            throw new VulkanException($"{name}: {rows} rows x {tokens} tokens exceed the device's workgroup count limit.");
        }
        recorder.Dispatch(_pipeline, [weights, x, y], new Push((uint)rows, (uint)cols, (uint)tokens), gx, gy);
    }
}
