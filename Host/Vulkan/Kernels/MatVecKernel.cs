using System.Runtime.InteropServices;
using PeftHost.Formats.Gguf;
using PeftHost.Vulkan.Runtime;

namespace PeftHost.Vulkan.Kernels;

/// <summary>
/// y = W x with W row-major [rows, cols] in a GGML type's block layout (as stored in GGUF) and
/// float32 x and y. <see cref="MatVecLayout.WorkgroupPerRow"/>: one workgroup per row, using 16-bit
/// storage and subgroup reductions when the context enabled them, else the 32-bit-word and
/// shared-memory fallbacks. <see cref="MatVecLayout.RowPerInvocation"/> (the default on CPU devices):
/// each invocation computes whole rows (same results up to summation order).
/// </summary>
public sealed class MatVecKernel
{
    [StructLayout(LayoutKind.Sequential)]
    private readonly record struct Push(uint Rows, uint Cols);

    [StructLayout(LayoutKind.Sequential)]
    private readonly record struct RowsPush(uint Rows, uint Cols, uint Tokens);

    private readonly VulkanComputePipeline _pipeline;
    private readonly uint _rowsPerGroup;
    private readonly VulkanComputePipeline? _unvectorized;

    /// <summary>The row shader's pipeline: workgroup, accumulate, tokens per invocation, and whether rows are read as vec4 / uvec4 (cols % 8 == 0).</summary>
    internal static VulkanPipelineDescription RowPipeline(string shader, uint workgroup, bool accumulate, uint tokensPerInvocation, bool vectorized)
        => new(shader, 3, 0b100, 12, [workgroup, accumulate ? 1u : 0u, tokensPerInvocation, vectorized ? 1u : 0u]);

    /// <summary>Creates (or reuses) the pipeline for <paramref name="type"/>.</summary>
    /// <param name="context">The device.</param>
    /// <param name="type">The weight type.</param>
    /// <param name="workgroupSize">Invocations per row (power of two, specialization constant 0).</param>
    /// <param name="accumulate">Add to y (y += W x, for residual connections) instead of storing (specialization constant 1).</param>
    /// <param name="layout">The invocation layout (default: the device's).</param>
    public MatVecKernel(VulkanContext context, GgmlType type, uint workgroupSize = 8, bool accumulate = false, MatVecLayout layout = MatVecLayout.Auto)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (!uint.IsPow2(workgroupSize) || workgroupSize > context.Device.MaxWorkgroupInvocations)
        {
            throw new ArgumentOutOfRangeException(nameof(workgroupSize), workgroupSize, "A power of two within the device's workgroup limit.");
        }
        Type = type;
        Layout = layout != MatVecLayout.Auto ? layout : context.Device.Kind == VulkanDeviceKind.Cpu ? MatVecLayout.RowPerInvocation : MatVecLayout.WorkgroupPerRow;
        if (Layout == MatVecLayout.RowPerInvocation)
        {
            ShaderName = $"matvec_rows_{GgmlTypeTraits.Name(type)}";
            _rowsPerGroup = workgroupSize;
            _pipeline = context.GetPipeline(RowPipeline(ShaderName, workgroupSize, accumulate, 1, vectorized: true));
            _unvectorized = context.GetPipeline(RowPipeline(ShaderName, workgroupSize, accumulate, 1, vectorized: false));
            Device = context.Device;
            return;
        }
        _rowsPerGroup = 1;
        bool use16 = type != GgmlType.F32 && (context.EnabledFeatures & VulkanFeatures.Storage16Bit) != 0;
        bool useSubgroup = (context.EnabledFeatures & VulkanFeatures.SubgroupArithmetic) != 0;
        ShaderName = $"matvec_{GgmlTypeTraits.Name(type)}{(use16 ? "_16bit" : "")}{(useSubgroup ? "_subgroup" : "")}";
        _pipeline = context.GetPipeline(new VulkanPipelineDescription(ShaderName, 3, 0b100, 8, [workgroupSize, accumulate ? 1u : 0u]));
        Device = context.Device;
    }

    /// <summary>The weight type.</summary>
    public GgmlType Type { get; }

    /// <summary>The invocation layout in use.</summary>
    public MatVecLayout Layout { get; }

    /// <summary>The shader variant chosen for the device's features.</summary>
    public string ShaderName { get; }

    private VulkanDeviceInfo Device { get; }

    /// <summary>Records y[rows] = W[rows, cols] x[cols].</summary>
    public void Record(VulkanCommandRecorder recorder, VulkanBuffer weights, VulkanBuffer x, VulkanBuffer y, int rows, int cols)
    {
        ArgumentNullException.ThrowIfNull(recorder);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(rows);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(cols);
        int block = GgmlTypeTraits.BlockSize(Type);
        if (cols % block != 0)
        {
            throw new ArgumentException($"matvec {GgmlTypeTraits.Name(Type)}: cols {cols} must be a multiple of the block size {block}.");
        }
        ulong weightBytes = (ulong)GgmlTypeTraits.ByteCount(Type, cols) * (ulong)rows;
        string name = $"matvec {GgmlTypeTraits.Name(Type)}";
        VulkanGrid.Require(weights, weightBytes, "weight", name);
        VulkanGrid.Require(x, (ulong)cols * 4, "x", name);
        VulkanGrid.Require(y, (ulong)rows * 4, "y", name);
        (uint gx, uint gy) = VulkanGrid.Split(((ulong)rows + _rowsPerGroup - 1) / _rowsPerGroup, Device.MaxWorkgroupCount);
        if (Layout == MatVecLayout.RowPerInvocation)
        {
            // The row shader takes the row split in z (y counts token groups).
            recorder.Dispatch(cols % 8 == 0 ? _pipeline : _unvectorized!, [weights, x, y], new RowsPush((uint)rows, (uint)cols, 1), gx, 1, gy);
            return;
        }
        recorder.Dispatch(_pipeline, [weights, x, y], new Push((uint)rows, (uint)cols), gx, gy);
    }
}
