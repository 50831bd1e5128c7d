namespace PeftHost.Vulkan.Runtime;

/// <summary>How to create a <see cref="VulkanContext"/>.</summary>
public sealed class VulkanContextOptions
{
    /// <summary>Device index or name substring; null reads PEFTHOST_VULKAN_DEVICE, then picks by kind.</summary>
    public string? Device { get; init; }

    /// <summary>Validation layer use.</summary>
    public VulkanValidation Validation { get; init; } = VulkanValidation.Auto;

    /// <summary>Optional features that must be present (an error names the missing ones).</summary>
    public VulkanFeatures RequiredFeatures { get; init; }

    /// <summary>Optional features not to use even when present (forces the fallback kernels).</summary>
    public VulkanFeatures DisabledFeatures { get; init; }
}
