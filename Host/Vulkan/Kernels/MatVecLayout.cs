namespace PeftHost.Vulkan.Kernels;

/// <summary>How <see cref="MatVecKernel"/> spreads a matrix-vector product over invocations.</summary>
public enum MatVecLayout
{
    /// <summary>The layout suited to the device: <see cref="RowPerInvocation"/> on CPU devices (lavapipe), else <see cref="WorkgroupPerRow"/>.</summary>
    Auto,

    /// <summary>One workgroup per row, invocations striding over its blocks and reducing (GPUs: coalesced reads).</summary>
    WorkgroupPerRow,

    /// <summary>Each invocation computes whole rows with word-wide reads and no reduction (CPU devices: the x loads are uniform across lanes).</summary>
    RowPerInvocation,
}
