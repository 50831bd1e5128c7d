using System.Collections.Concurrent;
using Silk.NET.Vulkan;

namespace PeftHost.Vulkan.Runtime;

/// <summary>
/// A logical device on the selected physical device, with one compute queue, a command pool and a
/// cache of compute pipelines (ggml-vulkan's vk_device). Create buffers, record work with
/// <see cref="CreateRecorder"/>, dispose when done (after everything created from it).
/// </summary>
public sealed unsafe class VulkanContext : IDisposable
{
    private static readonly TimeSpan FenceTimeout = TimeSpan.FromMinutes(5);
    private readonly VulkanInstance _instance;
    private readonly ConcurrentDictionary<string, VulkanComputePipeline> _pipelines = new();
    private readonly Lock _queueLock = new();
    private readonly PhysicalDeviceMemoryProperties _memory;
    private bool _disposed;

    private VulkanContext(VulkanInstance instance, VulkanDeviceInfo info, VulkanFeatures enabled, Device device, uint queueFamily)
    {
        _instance = instance;
        Device = info;
        EnabledFeatures = enabled;
        Handle = device;
        QueueFamily = queueFamily;
        Vk.GetDeviceQueue(device, queueFamily, 0, out Queue queue);
        Queue = queue;
        Vk.GetPhysicalDeviceMemoryProperties(instance.PhysicalDevice(info.Index), out _memory);
        var poolInfo = new CommandPoolCreateInfo
        {
            SType = StructureType.CommandPoolCreateInfo,
            QueueFamilyIndex = queueFamily,
            Flags = CommandPoolCreateFlags.ResetCommandBufferBit,
        };
        CommandPool pool;
        VulkanException.Check(Vk.CreateCommandPool(device, &poolInfo, null, &pool), "vkCreateCommandPool");
        CommandPool = pool;
    }

    /// <summary>The device in use.</summary>
    public VulkanDeviceInfo Device { get; }

    /// <summary>Every device the instance found.</summary>
    public IReadOnlyList<VulkanDeviceInfo> AvailableDevices => _instance.Devices;

    /// <summary>Optional features enabled on the device and used by the kernels.</summary>
    public VulkanFeatures EnabledFeatures { get; }

    /// <summary>Whether the validation layer is on (its errors throw <see cref="VulkanValidationException"/>).</summary>
    public bool ValidationEnabled => _instance.ValidationEnabled;

    internal Vk Vk => _instance.Vk;
    internal Silk.NET.Vulkan.Device Handle { get; }
    internal Queue Queue { get; }
    internal uint QueueFamily { get; }
    internal CommandPool CommandPool { get; }

    /// <summary>Creates the instance, selects a device (see <see cref="VulkanDeviceSelector"/>) and creates the logical device.</summary>
    public static VulkanContext Create(VulkanContextOptions? options = null)
    {
        options ??= new VulkanContextOptions();
        VulkanInstance instance = VulkanInstance.Create(options.Validation);
        try
        {
            string? selector = options.Device ?? Environment.GetEnvironmentVariable(VulkanDeviceSelector.EnvironmentVariable);
            VulkanDeviceInfo info = VulkanDeviceSelector.Select(instance.Devices, selector);
            VulkanFeatures missing = options.RequiredFeatures & ~info.SupportedFeatures;
            if (missing != VulkanFeatures.None)
            {
                throw new VulkanException($"Vulkan device {info} lacks required feature(s): {missing}.");
            }
            VulkanFeatures enabled = info.SupportedFeatures & ~options.DisabledFeatures;
            (Device device, uint family) = CreateDevice(instance, info, enabled);
            try
            {
                var context = new VulkanContext(instance, info, enabled, device, family);
                context.CheckValidation();
                return context;
            }
            catch
            {
                instance.Vk.DestroyDevice(device, null);
                throw;
            }
        }
        catch
        {
            instance.Dispose();
            throw;
        }
    }

    private static (Device, uint) CreateDevice(VulkanInstance instance, VulkanDeviceInfo info, VulkanFeatures enabled)
    {
        Vk vk = instance.Vk;
        PhysicalDevice physical = instance.PhysicalDevice(info.Index);
        uint count = 0;
        vk.GetPhysicalDeviceQueueFamilyProperties(physical, &count, null);
        var families = new QueueFamilyProperties[count];
        fixed (QueueFamilyProperties* f = families)
        {
            vk.GetPhysicalDeviceQueueFamilyProperties(physical, &count, f);
        }
        // Prefer a compute-only family (often an async compute queue), else any with compute.
        int family = Array.FindIndex(families, q => (q.QueueFlags & QueueFlags.ComputeBit) != 0 && (q.QueueFlags & QueueFlags.GraphicsBit) == 0);
        if (family < 0)
        {
            family = Array.FindIndex(families, q => (q.QueueFlags & QueueFlags.ComputeBit) != 0);
        }
        if (family < 0)
        {
            throw new VulkanException($"Vulkan device {info} has no compute queue.");
        }
        float priority = 1f;
        var queueInfo = new DeviceQueueCreateInfo
        {
            SType = StructureType.DeviceQueueCreateInfo,
            QueueFamilyIndex = (uint)family,
            QueueCount = 1,
            PQueuePriorities = &priority,
        };
        bool v12 = info.ApiVersion >= new Version(1, 2);
        var f11 = new PhysicalDeviceVulkan11Features
        {
            SType = StructureType.PhysicalDeviceVulkan11Features,
            StorageBuffer16BitAccess = (enabled & VulkanFeatures.Storage16Bit) != 0,
        };
        var f12 = new PhysicalDeviceVulkan12Features
        {
            SType = StructureType.PhysicalDeviceVulkan12Features,
            PNext = &f11,
            StorageBuffer8BitAccess = (enabled & VulkanFeatures.Storage8Bit) != 0,
        };
        var deviceInfo = new DeviceCreateInfo
        {
            SType = StructureType.DeviceCreateInfo,
            QueueCreateInfoCount = 1,
            PQueueCreateInfos = &queueInfo,
            PNext = v12 ? &f12 : null,
        };
        Device device;
        VulkanException.Check(vk.CreateDevice(physical, &deviceInfo, null, &device), $"vkCreateDevice on {info}");
        return (device, (uint)family);
    }

    /// <summary>Creates a device-local storage buffer of <paramref name="bytes"/> bytes.</summary>
    public VulkanBuffer CreateBuffer(ulong bytes, string name)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return new VulkanBuffer(this, bytes, name);
    }

    /// <summary>Creates a device-local buffer holding <paramref name="data"/> (uploaded through a staging buffer).</summary>
    public VulkanBuffer Upload<T>(ReadOnlySpan<T> data, string name) where T : unmanaged
    {
        VulkanBuffer buffer = CreateBuffer((ulong)(data.Length * sizeof(T)), name);
        try
        {
            buffer.Upload(data);
            return buffer;
        }
        catch
        {
            buffer.Dispose();
            throw;
        }
    }

    /// <summary>Starts recording work into one command buffer.</summary>
    public VulkanCommandRecorder CreateRecorder()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return new VulkanCommandRecorder(this);
    }

    /// <summary>The pipeline for a shader and specialization, created once per context.</summary>
    internal VulkanComputePipeline GetPipeline(VulkanPipelineDescription description)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return _pipelines.GetOrAdd(description.Key, _ => new VulkanComputePipeline(this, description));
    }

    /// <summary>A memory type index with <paramref name="required"/> flags, preferring <paramref name="preferred"/> ones.</summary>
    internal uint FindMemoryType(uint typeBits, MemoryPropertyFlags required, MemoryPropertyFlags preferred, string what)
    {
        int fallback = -1;
        for (int i = 0; i < _memory.MemoryTypeCount; i++)
        {
            MemoryPropertyFlags flags = _memory.MemoryTypes[i].PropertyFlags;
            if ((typeBits & (1u << i)) == 0 || (flags & required) != required)
            {
                continue;
            }
            if ((flags & preferred) == preferred)
            {
                return (uint)i;
            }
            if (fallback < 0)
            {
                fallback = i;
            }
        }
        return fallback >= 0
            ? (uint)fallback
            : throw new VulkanException($"Vulkan device {Device} has no memory type with {required} for {what}.");
    }

    /// <summary>Submits one command buffer and waits for it.</summary>
    internal void SubmitAndWait(CommandBuffer commandBuffer, string what)
    {
        var fenceInfo = new FenceCreateInfo { SType = StructureType.FenceCreateInfo };
        Fence fence;
        VulkanException.Check(Vk.CreateFence(Handle, &fenceInfo, null, &fence), "vkCreateFence");
        try
        {
            var submit = new SubmitInfo
            {
                SType = StructureType.SubmitInfo,
                CommandBufferCount = 1,
                PCommandBuffers = &commandBuffer,
            };
            lock (_queueLock)
            {
                VulkanException.Check(Vk.QueueSubmit(Queue, 1, &submit, fence), $"vkQueueSubmit ({what})");
            }
            Result r = Vk.WaitForFences(Handle, 1, &fence, true, (ulong)FenceTimeout.Ticks * 100);
            if (r == Result.Timeout)
            {
                throw new VulkanException($"Vulkan: {what} did not finish within {FenceTimeout.TotalMinutes} minutes.", r);
            }
            VulkanException.Check(r, $"vkWaitForFences ({what})");
        }
        finally
        {
            Vk.DestroyFence(Handle, fence, null);
        }
        CheckValidation();
    }

    /// <summary>Throws when the validation layer recorded errors.</summary>
    internal void CheckValidation() => _instance.Messenger?.ThrowIfErrors();

    /// <inheritdoc/>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        Vk.DeviceWaitIdle(Handle);
        foreach (VulkanComputePipeline p in _pipelines.Values)
        {
            p.Dispose();
        }
        _pipelines.Clear();
        Vk.DestroyCommandPool(Handle, CommandPool, null);
        Vk.DestroyDevice(Handle, null);
        try
        {
            CheckValidation();
        }
        finally
        {
            _instance.Dispose();
        }
    }
}
