using Silk.NET.Vulkan;
using VkBuffer = Silk.NET.Vulkan.Buffer;

namespace PeftHost.Vulkan.Runtime;

/// <summary>A mapped host-visible buffer used to move data to and from device-local buffers.</summary>
internal sealed unsafe class VulkanStagingBuffer : IDisposable
{
    private readonly VulkanContext _context;
    private readonly DeviceMemory _memory;
    private readonly byte* _mapped;
    private readonly CommandBuffer _commands;

    public VulkanStagingBuffer(VulkanContext context, ulong size, bool forDownload)
    {
        _context = context;
        Size = size;
        // Downloads prefer cached memory: the host reads it back.
        (Handle, _memory) = VulkanBuffer.Allocate(context, size, BufferUsageFlags.TransferSrcBit | BufferUsageFlags.TransferDstBit,
            MemoryPropertyFlags.HostVisibleBit | MemoryPropertyFlags.HostCoherentBit,
            MemoryPropertyFlags.HostVisibleBit | MemoryPropertyFlags.HostCoherentBit | (forDownload ? MemoryPropertyFlags.HostCachedBit : 0),
            "staging buffer");
        try
        {
            void* p;
            VulkanException.Check(context.Vk.MapMemory(context.Handle, _memory, 0, size, 0, &p), "vkMapMemory (staging)");
            _mapped = (byte*)p;
            var alloc = new CommandBufferAllocateInfo
            {
                SType = StructureType.CommandBufferAllocateInfo,
                CommandPool = context.CommandPool,
                Level = CommandBufferLevel.Primary,
                CommandBufferCount = 1,
            };
            CommandBuffer cb;
            VulkanException.Check(context.Vk.AllocateCommandBuffers(context.Handle, &alloc, &cb), "vkAllocateCommandBuffers (staging)");
            _commands = cb;
        }
        catch
        {
            context.Vk.DestroyBuffer(context.Handle, Handle, null);
            context.Vk.FreeMemory(context.Handle, _memory, null);
            throw;
        }
    }

    public ulong Size { get; }
    public VkBuffer Handle { get; }
    public Span<byte> Span => new(_mapped, (int)Size);

    /// <summary>Copies between buffers with the barriers that order it against compute work and the host.</summary>
    public void Copy(VkBuffer src, ulong srcOffset, VkBuffer dst, ulong dstOffset, ulong size, bool toDevice, string what)
    {
        Vk vk = _context.Vk;
        VulkanException.Check(vk.ResetCommandBuffer(_commands, 0), "vkResetCommandBuffer");
        var begin = new CommandBufferBeginInfo { SType = StructureType.CommandBufferBeginInfo, Flags = CommandBufferUsageFlags.OneTimeSubmitBit };
        VulkanException.Check(vk.BeginCommandBuffer(_commands, &begin), "vkBeginCommandBuffer");
        // Earlier compute work on the device buffer (reads before an upload overwrites it, writes before a download) must finish first.
        var before = new MemoryBarrier
        {
            SType = StructureType.MemoryBarrier,
            SrcAccessMask = AccessFlags.ShaderWriteBit | AccessFlags.ShaderReadBit | AccessFlags.TransferWriteBit,
            DstAccessMask = AccessFlags.TransferReadBit | AccessFlags.TransferWriteBit,
        };
        vk.CmdPipelineBarrier(_commands, PipelineStageFlags.ComputeShaderBit | PipelineStageFlags.TransferBit, PipelineStageFlags.TransferBit,
            0, 1, &before, 0, null, 0, null);
        var region = new BufferCopy { SrcOffset = srcOffset, DstOffset = dstOffset, Size = size };
        vk.CmdCopyBuffer(_commands, src, dst, 1, &region);
        // Make the copy visible to later compute work (upload) or to the host (download).
        var after = new MemoryBarrier
        {
            SType = StructureType.MemoryBarrier,
            SrcAccessMask = AccessFlags.TransferWriteBit,
            DstAccessMask = toDevice ? AccessFlags.ShaderReadBit | AccessFlags.ShaderWriteBit : AccessFlags.HostReadBit,
        };
        vk.CmdPipelineBarrier(_commands, PipelineStageFlags.TransferBit, toDevice ? PipelineStageFlags.ComputeShaderBit : PipelineStageFlags.HostBit,
            0, 1, &after, 0, null, 0, null);
        VulkanException.Check(vk.EndCommandBuffer(_commands), "vkEndCommandBuffer");
        _context.SubmitAndWait(_commands, what);
    }

    public void Dispose()
    {
        Vk vk = _context.Vk;
        CommandBuffer cb = _commands;
        vk.FreeCommandBuffers(_context.Handle, _context.CommandPool, 1, &cb);
        vk.UnmapMemory(_context.Handle, _memory);
        vk.DestroyBuffer(_context.Handle, Handle, null);
        vk.FreeMemory(_context.Handle, _memory, null);
    }
}
