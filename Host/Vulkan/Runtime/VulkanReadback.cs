using System.Runtime.InteropServices;
using Silk.NET.Vulkan;
using VkBuffer = Silk.NET.Vulkan.Buffer;

namespace PeftHost.Vulkan.Runtime;

/// <summary>
/// A small persistently mapped host buffer that a command buffer copies results into
/// (<see cref="VulkanCommandRecorder.CopyToHost"/>), so reading a sampled token id needs no extra submission.
/// </summary>
public sealed unsafe class VulkanReadback : IDisposable
{
    private readonly VulkanContext _context;
    private readonly DeviceMemory _memory;
    private readonly byte* _mapped;
    private bool _disposed;

    /// <summary>Creates a mapped buffer of <paramref name="bytes"/> bytes.</summary>
    public VulkanReadback(VulkanContext context, ulong bytes)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentOutOfRangeException.ThrowIfZero(bytes);
        _context = context;
        Size = bytes;
        (Handle, _memory) = VulkanBuffer.Allocate(context, bytes, BufferUsageFlags.TransferDstBit,
            MemoryPropertyFlags.HostVisibleBit | MemoryPropertyFlags.HostCoherentBit,
            MemoryPropertyFlags.HostVisibleBit | MemoryPropertyFlags.HostCoherentBit | MemoryPropertyFlags.HostCachedBit, "read-back buffer");
        void* p;
        Result r = context.Vk.MapMemory(context.Handle, _memory, 0, bytes, 0, &p);
        if (r != Result.Success)
        {
            context.Vk.DestroyBuffer(context.Handle, Handle, null);
            context.Vk.FreeMemory(context.Handle, _memory, null);
            VulkanException.Check(r, "vkMapMemory (read-back)");
        }
        _mapped = (byte*)p;
    }

    /// <summary>The size in bytes.</summary>
    public ulong Size { get; }

    internal VkBuffer Handle { get; }

    /// <summary>The mapped contents as <typeparamref name="T"/> (valid after the submission that copied into it).</summary>
    public ReadOnlySpan<T> Read<T>() where T : unmanaged
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return MemoryMarshal.Cast<byte, T>(new ReadOnlySpan<byte>(_mapped, (int)Size));
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        _context.Vk.UnmapMemory(_context.Handle, _memory);
        _context.Vk.DestroyBuffer(_context.Handle, Handle, null);
        _context.Vk.FreeMemory(_context.Handle, _memory, null);
    }
}
