using System.Runtime.InteropServices;
using PeftHost.Formats.Gguf;
using PeftHost.Vulkan.Runtime;

namespace PeftHost.Vulkan.Kernels;

/// <summary>
/// Y[tokens, rows] (+)= X[tokens, cols] W[rows, cols]ᵀ for prefill, W in a GGML type's block layout:
/// 32 x 32 output tiles per workgroup with W and X slices staged in shared memory (each weight
/// block dequantized once per tile of 32 tokens). On CPU devices (<see cref="MatVecLayout.RowPerInvocation"/>)
/// each invocation computes one row for a group of tokens instead, reading each weight once per
/// group (the matrix-vector row shader). Any sizes; quantized cols must be whole blocks.
/// </summary>
public sealed class MatMulKernel
{
    private const uint Tile = 32;
    private const uint RowWorkgroup = 8;

    [StructLayout(LayoutKind.Sequential)]
    private readonly record struct Push(uint Rows, uint Cols, uint Tokens);

    private readonly VulkanComputePipeline _pipeline;
    private readonly uint _maxGroups;
    private readonly uint _tokensPerGroup;
    private readonly VulkanComputePipeline? _unvectorized;

    /// <summary>Creates (or reuses) the pipeline for <paramref name="type"/>; <paramref name="accumulate"/> adds to Y.</summary>
    /// <param name="context">The device.</param>
    /// <param name="type">The weight type.</param>
    /// <param name="accumulate">Add to Y (residual connections) instead of storing.</param>
    /// <param name="layout"><see cref="MatVecLayout.WorkgroupPerRow"/>: the tiled kernel; <see cref="MatVecLayout.RowPerInvocation"/>: rows per invocation; default: the device's.</param>
    /// <param name="tokensPerInvocation">Tokens sharing each weight read in the row layout (1 to 16).</param>
    public MatMulKernel(VulkanContext context, GgmlType type, bool accumulate = false, MatVecLayout layout = MatVecLayout.Auto, uint tokensPerInvocation = 8)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentOutOfRangeException.ThrowIfZero(tokensPerInvocation);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(tokensPerInvocation, 16u);
        Type = type;
        Layout = layout != MatVecLayout.Auto ? layout : context.Device.Kind == VulkanDeviceKind.Cpu ? MatVecLayout.RowPerInvocation : MatVecLayout.WorkgroupPerRow;
        _tokensPerGroup = tokensPerInvocation;
        if (Layout == MatVecLayout.RowPerInvocation)
        {
            string shader = $"matvec_rows_{GgmlTypeTraits.Name(type)}";
            _pipeline = context.GetPipeline(MatVecKernel.RowPipeline(shader, RowWorkgroup, accumulate, tokensPerInvocation, vectorized: true));
            _unvectorized = context.GetPipeline(MatVecKernel.RowPipeline(shader, RowWorkgroup, accumulate, tokensPerInvocation, vectorized: false));
        }
        else
        {
            _pipeline = context.GetPipeline(new VulkanPipelineDescription($"matmul_{GgmlTypeTraits.Name(type)}", 3, 0b100, 12, [accumulate ? 1u : 0u]));
        }
        _maxGroups = context.Device.MaxWorkgroupCount;
    }

    /// <summary>The layout in use.</summary>
    public MatVecLayout Layout { get; }

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
        if (Layout == MatVecLayout.RowPerInvocation)
        {
            (uint rx, uint rz) = VulkanGrid.Split(((ulong)rows + RowWorkgroup - 1) / RowWorkgroup, _maxGroups);
            uint ry = ((uint)tokens + _tokensPerGroup - 1) / _tokensPerGroup;
            recorder.Dispatch(cols % 8 == 0 ? _pipeline : _unvectorized!, [weights, x, y], new Push((uint)rows, (uint)cols, (uint)tokens), rx, ry, rz);
            return;
        }
        uint gx = ((uint)rows + Tile - 1) / Tile;
        uint gy = ((uint)tokens + Tile - 1) / Tile;
        if (gx > _maxGroups || gy > _maxGroups)
        {
            throw new VulkanException($"{name}: {rows} rows x {tokens} tokens exceed the device's workgroup count limit.");
        }
        recorder.Dispatch(_pipeline, [weights, x, y], new Push((uint)rows, (uint)cols, (uint)tokens), gx, gy);
    }
}
