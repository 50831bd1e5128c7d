using Silk.NET.Core.Native;
using Silk.NET.Vulkan;

namespace PeftHost.Vulkan.Runtime;

/// <summary>Reads a physical device's properties, limits and optional features.</summary>
internal static unsafe class VulkanDeviceQuery
{
    public static VulkanDeviceInfo Describe(Vk vk, PhysicalDevice device, int index)
    {
        var subgroup = new PhysicalDeviceSubgroupProperties { SType = StructureType.PhysicalDeviceSubgroupProperties };
        var driver = new PhysicalDeviceDriverProperties { SType = StructureType.PhysicalDeviceDriverProperties };
        vk.GetPhysicalDeviceProperties(device, out PhysicalDeviceProperties basic);
        var apiVersion = new Version((int)(basic.ApiVersion >> 22), (int)((basic.ApiVersion >> 12) & 0x3FF), (int)(basic.ApiVersion & 0xFFF));
        bool v12 = apiVersion >= new Version(1, 2);
        if (v12)
        {
            subgroup.PNext = &driver;
        }
        var props = new PhysicalDeviceProperties2 { SType = StructureType.PhysicalDeviceProperties2, PNext = &subgroup };
        vk.GetPhysicalDeviceProperties2(device, &props);

        VulkanFeatures features = Features(vk, device, v12);
        if ((subgroup.SupportedStages & ShaderStageFlags.ComputeBit) != 0 &&
            (subgroup.SupportedOperations & SubgroupFeatureFlags.ArithmeticBit) != 0)
        {
            features |= VulkanFeatures.SubgroupArithmetic;
        }

        vk.GetPhysicalDeviceMemoryProperties(device, out PhysicalDeviceMemoryProperties memory);
        var heaps = new List<VulkanMemoryHeap>();
        for (int i = 0; i < memory.MemoryHeapCount; i++)
        {
            MemoryHeap h = memory.MemoryHeaps[i];
            heaps.Add(new VulkanMemoryHeap(h.Size, (h.Flags & MemoryHeapFlags.DeviceLocalBit) != 0));
        }

        uint queueCount = 0;
        vk.GetPhysicalDeviceQueueFamilyProperties(device, &queueCount, null);
        var queues = new QueueFamilyProperties[queueCount];
        fixed (QueueFamilyProperties* q = queues)
        {
            vk.GetPhysicalDeviceQueueFamilyProperties(device, &queueCount, q);
        }

        string driverText = v12
            ? $"{SilkMarshal.PtrToString((nint)driver.DriverName)} {SilkMarshal.PtrToString((nint)driver.DriverInfo)}".Trim()
            : $"driver version 0x{basic.DriverVersion:X}";
        return new VulkanDeviceInfo
        {
            Index = index,
            Name = SilkMarshal.PtrToString((nint)basic.DeviceName) ?? $"device {index}",
            Kind = basic.DeviceType switch
            {
                PhysicalDeviceType.DiscreteGpu => VulkanDeviceKind.Discrete,
                PhysicalDeviceType.IntegratedGpu => VulkanDeviceKind.Integrated,
                PhysicalDeviceType.VirtualGpu => VulkanDeviceKind.Virtual,
                PhysicalDeviceType.Cpu => VulkanDeviceKind.Cpu,
                _ => VulkanDeviceKind.Other,
            },
            ApiVersion = apiVersion,
            Driver = driverText,
            VendorId = basic.VendorID,
            SubgroupSize = Math.Max(1u, subgroup.SubgroupSize),
            SupportedFeatures = features,
            MemoryHeaps = heaps,
            MaxWorkgroupInvocations = basic.Limits.MaxComputeWorkGroupInvocations,
            MaxWorkgroupCount = Math.Min(basic.Limits.MaxComputeWorkGroupCount[0], basic.Limits.MaxComputeWorkGroupCount[1]),
            MaxStorageBufferRange = basic.Limits.MaxStorageBufferRange,
            HasComputeQueue = queues.Any(q => (q.QueueFlags & QueueFlags.ComputeBit) != 0),
        };
    }

    private static VulkanFeatures Features(Vk vk, PhysicalDevice device, bool v12)
    {
        if (!v12)
        {
            // The 1.1/1.2 feature structs need a 1.2 device; older devices get the fallbacks.
            return VulkanFeatures.None;
        }
        var f11 = new PhysicalDeviceVulkan11Features { SType = StructureType.PhysicalDeviceVulkan11Features };
        var f12 = new PhysicalDeviceVulkan12Features { SType = StructureType.PhysicalDeviceVulkan12Features, PNext = &f11 };
        var f = new PhysicalDeviceFeatures2 { SType = StructureType.PhysicalDeviceFeatures2, PNext = &f12 };
        vk.GetPhysicalDeviceFeatures2(device, &f);
        VulkanFeatures result = VulkanFeatures.None;
        if (f11.StorageBuffer16BitAccess)
        {
            result |= VulkanFeatures.Storage16Bit;
        }
        if (f12.StorageBuffer8BitAccess)
        {
            result |= VulkanFeatures.Storage8Bit;
        }
        return result;
    }
}
