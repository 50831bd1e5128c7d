namespace PeftHost.Vulkan.Runtime;

/// <summary>Optional device capabilities the kernels use when present, with fallbacks when not.</summary>
[Flags]
public enum VulkanFeatures
{
    /// <summary>None.</summary>
    None = 0,
    /// <summary>16-bit integer/float loads from storage buffers (storageBuffer16BitAccess).</summary>
    Storage16Bit = 1,
    /// <summary>8-bit integer loads from storage buffers (storageBuffer8BitAccess); reported, not yet used.</summary>
    Storage8Bit = 2,
    /// <summary>Subgroup arithmetic (subgroupAdd) in compute shaders.</summary>
    SubgroupArithmetic = 4,
}
