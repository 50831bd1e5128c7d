namespace PeftHost.Vulkan.Runtime;

/// <summary>What a physical device is and what it supports (for selection and <c>doctor</c>).</summary>
public sealed record VulkanDeviceInfo
{
    /// <summary>Index in the instance's enumeration order (what PEFTHOST_VULKAN_DEVICE=N selects).</summary>
    public required int Index { get; init; }
    /// <summary>The device name.</summary>
    public required string Name { get; init; }
    /// <summary>The device kind.</summary>
    public required VulkanDeviceKind Kind { get; init; }
    /// <summary>Vulkan API version supported by the device.</summary>
    public required Version ApiVersion { get; init; }
    /// <summary>The driver name and info (Vulkan 1.2 driver properties), or the vendor-specific driver version.</summary>
    public required string Driver { get; init; }
    /// <summary>PCI vendor id.</summary>
    public required uint VendorId { get; init; }
    /// <summary>Subgroup size (1 when unknown).</summary>
    public required uint SubgroupSize { get; init; }
    /// <summary>Optional features the device supports.</summary>
    public required VulkanFeatures SupportedFeatures { get; init; }
    /// <summary>Memory heaps.</summary>
    public required IReadOnlyList<VulkanMemoryHeap> MemoryHeaps { get; init; }
    /// <summary>maxComputeWorkGroupInvocations.</summary>
    public required uint MaxWorkgroupInvocations { get; init; }
    /// <summary>maxComputeWorkGroupCount[0] (and [1]).</summary>
    public required uint MaxWorkgroupCount { get; init; }
    /// <summary>maxStorageBufferRange in bytes.</summary>
    public required uint MaxStorageBufferRange { get; init; }
    /// <summary>Whether some queue family supports compute.</summary>
    public required bool HasComputeQueue { get; init; }

    /// <inheritdoc/>
    public override string ToString() => $"#{Index} {Name} ({Kind}, Vulkan {ApiVersion}, {Driver})";
}
