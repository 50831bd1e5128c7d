namespace PeftHost.Vulkan.Runtime;

/// <summary>One memory heap of a device.</summary>
/// <param name="Size">Bytes.</param>
/// <param name="DeviceLocal">Whether the heap is device-local.</param>
public sealed record VulkanMemoryHeap(ulong Size, bool DeviceLocal);
