using System.Runtime.InteropServices;
using Silk.NET.Vulkan;
using VkBuffer = Silk.NET.Vulkan.Buffer;

namespace PeftHost.Vulkan.Runtime;

/// <summary>
/// A device-local storage buffer. Host data moves through host-visible staging buffers and a
/// copy command (the path that discrete GPUs need; on lavapipe both memories are host RAM).
/// </summary>
public sealed unsafe class VulkanBuffer : IDisposable
{
    private const ulong StagingChunk = 16UL << 20;
    private readonly VulkanContext _context;
    private bool _disposed;

    internal VulkanBuffer(VulkanContext context, ulong size, string name)
    {
        if (size == 0)
        {
            throw new ArgumentOutOfRangeException(nameof(size), $"Vulkan buffer '{name}' must not be empty.");
        }
        if (size > context.Device.MaxStorageBufferRange)
        {
            throw new VulkanException($"Vulkan buffer '{name}' of {size} bytes exceeds the device's maxStorageBufferRange ({context.Device.MaxStorageBufferRange}).");
        }
        _context = context;
        Size = size;
        Name = name;
        // Shaders read storage buffers as 32-bit words: round up so a trailing partial word is in bounds.
        (Handle, Memory) = Allocate(context, (size + 3) & ~3UL, BufferUsageFlags.StorageBufferBit | BufferUsageFlags.TransferSrcBit | BufferUsageFlags.TransferDstBit,
            MemoryPropertyFlags.DeviceLocalBit, MemoryPropertyFlags.DeviceLocalBit, $"buffer '{name}'");
    }

    /// <summary>The size in bytes.</summary>
    public ulong Size { get; }

    /// <summary>The name used in errors.</summary>
    public string Name { get; }

    internal VkBuffer Handle { get; }
    internal DeviceMemory Memory { get; }

    /// <summary>Creates a buffer and binds memory of a type with <paramref name="required"/> flags.</summary>
    internal static (VkBuffer, DeviceMemory) Allocate(VulkanContext context, ulong size, BufferUsageFlags usage,
        MemoryPropertyFlags required, MemoryPropertyFlags preferred, string what)
    {
        Vk vk = context.Vk;
        var info = new BufferCreateInfo
        {
            SType = StructureType.BufferCreateInfo,
            Size = size,
            Usage = usage,
            SharingMode = SharingMode.Exclusive,
        };
        VkBuffer buffer;
        VulkanException.Check(vk.CreateBuffer(context.Handle, &info, null, &buffer), $"vkCreateBuffer ({what}, {size} bytes)");
        try
        {
            vk.GetBufferMemoryRequirements(context.Handle, buffer, out MemoryRequirements req);
            var alloc = new MemoryAllocateInfo
            {
                SType = StructureType.MemoryAllocateInfo,
                AllocationSize = req.Size,
                MemoryTypeIndex = context.FindMemoryType(req.MemoryTypeBits, required, preferred, what),
            };
            DeviceMemory memory;
            Result r = vk.AllocateMemory(context.Handle, &alloc, null, &memory);
            if (r is Result.ErrorOutOfDeviceMemory or Result.ErrorOutOfHostMemory)
            {
                throw new VulkanException($"Vulkan: out of memory allocating {req.Size} bytes for {what} on {context.Device}.", r);
            }
            VulkanException.Check(r, $"vkAllocateMemory ({what})");
            try
            {
                VulkanException.Check(vk.BindBufferMemory(context.Handle, buffer, memory, 0), $"vkBindBufferMemory ({what})");
            }
            catch
            {
                vk.FreeMemory(context.Handle, memory, null);
                throw;
            }
            return (buffer, memory);
        }
        catch
        {
            vk.DestroyBuffer(context.Handle, buffer, null);
            throw;
        }
    }

    /// <summary>Copies <paramref name="data"/> into the buffer at <paramref name="byteOffset"/>.</summary>
    public void Upload<T>(ReadOnlySpan<T> data, ulong byteOffset = 0) where T : unmanaged
    {
        ReadOnlySpan<byte> bytes = MemoryMarshal.AsBytes(data);
        CheckRange(byteOffset, (ulong)bytes.Length);
        using var staging = new VulkanStagingBuffer(_context, Math.Min(StagingChunk, (ulong)bytes.Length), forDownload: false);
        for (ulong done = 0; done < (ulong)bytes.Length; done += staging.Size)
        {
            int n = (int)Math.Min(staging.Size, (ulong)bytes.Length - done);
            bytes.Slice((int)done, n).CopyTo(staging.Span);
            staging.Copy(staging.Handle, 0, Handle, byteOffset + done, (ulong)n, toDevice: true, $"upload to '{Name}'");
        }
    }

    /// <summary>Copies the buffer, from <paramref name="byteOffset"/>, into <paramref name="data"/>.</summary>
    public void Download<T>(Span<T> data, ulong byteOffset = 0) where T : unmanaged
    {
        Span<byte> bytes = MemoryMarshal.AsBytes(data);
        CheckRange(byteOffset, (ulong)bytes.Length);
        using var staging = new VulkanStagingBuffer(_context, Math.Min(StagingChunk, (ulong)bytes.Length), forDownload: true);
        for (ulong done = 0; done < (ulong)bytes.Length; done += staging.Size)
        {
            int n = (int)Math.Min(staging.Size, (ulong)bytes.Length - done);
            staging.Copy(Handle, byteOffset + done, staging.Handle, 0, (ulong)n, toDevice: false, $"download from '{Name}'");
            staging.Span[..n].CopyTo(bytes.Slice((int)done, n));
        }
    }

    /// <summary>The whole buffer as an array of <typeparamref name="T"/>.</summary>
    public T[] Download<T>() where T : unmanaged
    {
        var result = new T[Size / (ulong)sizeof(T)];
        Download<T>(result);
        return result;
    }

    private void CheckRange(ulong offset, ulong length)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (length == 0 || offset + length > Size)
        {
            throw new ArgumentOutOfRangeException(nameof(offset), $"Vulkan buffer '{Name}' has {Size} bytes; [{offset}, {offset + length}) is outside it or empty.");
        }
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        _context.Vk.DestroyBuffer(_context.Handle, Handle, null);
        _context.Vk.FreeMemory(_context.Handle, Memory, null);
    }
}
