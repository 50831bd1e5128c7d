using PeftHost.Vulkan.Runtime;
using Xunit;

namespace PeftHost.Vulkan.Tests;

/// <summary>Device ranking and overrides, on described devices (no Vulkan needed).</summary>
public sealed class VulkanDeviceSelectorTests
{
    private static VulkanDeviceInfo Dev(int index, string name, VulkanDeviceKind kind, bool compute = true, int minor = 3) => new()
    {
        Index = index,
        Name = name,
        Kind = kind,
        ApiVersion = new Version(1, minor),
        Driver = "test",
        VendorId = 0,
        SubgroupSize = 8,
        SupportedFeatures = VulkanFeatures.None,
        MemoryHeaps = [],
        MaxWorkgroupInvocations = 1024,
        MaxWorkgroupCount = 65535,
        MaxStorageBufferRange = uint.MaxValue,
        HasComputeQueue = compute,
    };

    private static readonly VulkanDeviceInfo[] Devices =
    [
        Dev(0, "llvmpipe (LLVM 15.0.6, 256 bits)", VulkanDeviceKind.Cpu),
        Dev(1, "Intel(R) UHD Graphics 620", VulkanDeviceKind.Integrated),
        Dev(2, "AMD Radeon RX 7900", VulkanDeviceKind.Discrete, compute: false),
        Dev(3, "NVIDIA GeForce RTX 4090", VulkanDeviceKind.Discrete),
        Dev(4, "Old GPU", VulkanDeviceKind.Discrete, minor: 0),
    ];

    [Fact]
    public void Prefers_discrete_then_integrated_then_cpu()
    {
        Assert.Equal(3, VulkanDeviceSelector.Select(Devices, null).Index);
        Assert.Equal(1, VulkanDeviceSelector.Select(Devices[..2], null).Index);
        Assert.Equal(0, VulkanDeviceSelector.Select(Devices[..1], "").Index);
    }

    [Fact]
    public void Override_by_index_or_name_substring()
    {
        Assert.Equal(0, VulkanDeviceSelector.Select(Devices, "0").Index);
        Assert.Equal(0, VulkanDeviceSelector.Select(Devices, "LLVMPIPE").Index);
        Assert.Equal(1, VulkanDeviceSelector.Select(Devices, "intel").Index);
    }

    [Fact]
    public void Errors_name_the_problem()
    {
        Assert.Contains("mesa-vulkan-drivers", Assert.Throws<VulkanException>(() => VulkanDeviceSelector.Select([], null)).Message);
        Assert.Contains("Devices:", Assert.Throws<VulkanException>(() => VulkanDeviceSelector.Select(Devices, "7")).Message);
        Assert.Contains("compute queue", Assert.Throws<VulkanException>(() => VulkanDeviceSelector.Select(Devices, "AMD")).Message);
        Assert.Contains("Vulkan 1.1", Assert.Throws<VulkanException>(() => VulkanDeviceSelector.Select(Devices, "Old")).Message);
    }
}
