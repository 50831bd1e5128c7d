using Silk.NET.Vulkan;

namespace PeftHost.Vulkan.Runtime;

/// <summary>
/// Records many dispatches into ONE command buffer, inserting a compute-to-compute barrier only
/// where a dispatch touches a buffer written (or writes a buffer read) since the last barrier.
/// <see cref="Submit"/> runs it and waits; it may be submitted again to repeat the same work.
/// </summary>
public sealed unsafe class VulkanCommandRecorder : IDisposable
{
    private const uint SetsPerPool = 64;
    private const uint DescriptorsPerSet = 8;
    private readonly VulkanContext _context;
    private readonly CommandBuffer _commands;
    private readonly List<DescriptorPool> _pools = [];
    private readonly HashSet<VulkanBuffer> _writtenSinceBarrier = [];
    private readonly HashSet<VulkanBuffer> _readSinceBarrier = [];
    private uint _setsLeftInPool;
    private bool _ended;
    private bool _disposed;

    internal VulkanCommandRecorder(VulkanContext context)
    {
        _context = context;
        var alloc = new CommandBufferAllocateInfo
        {
            SType = StructureType.CommandBufferAllocateInfo,
            CommandPool = context.CommandPool,
            Level = CommandBufferLevel.Primary,
            CommandBufferCount = 1,
        };
        CommandBuffer cb;
        VulkanException.Check(context.Vk.AllocateCommandBuffers(context.Handle, &alloc, &cb), "vkAllocateCommandBuffers");
        _commands = cb;
        var begin = new CommandBufferBeginInfo { SType = StructureType.CommandBufferBeginInfo };
        VulkanException.Check(context.Vk.BeginCommandBuffer(_commands, &begin), "vkBeginCommandBuffer");
        // Work from earlier submissions (other recorders, uploads) is ordered before this one.
        Barrier();
        BarrierCount = 0;
    }

    /// <summary>Dispatches recorded so far.</summary>
    public int DispatchCount { get; private set; }

    /// <summary>Barriers inserted between dispatches.</summary>
    public int BarrierCount { get; private set; }

    /// <summary>Records a full compute-to-compute memory barrier.</summary>
    public void Barrier()
    {
        ThrowIfEnded();
        var barrier = new MemoryBarrier
        {
            SType = StructureType.MemoryBarrier,
            SrcAccessMask = AccessFlags.ShaderWriteBit | AccessFlags.TransferWriteBit,
            DstAccessMask = AccessFlags.ShaderReadBit | AccessFlags.ShaderWriteBit,
        };
        barrier.SrcAccessMask |= AccessFlags.ShaderReadBit | AccessFlags.TransferReadBit;
        barrier.DstAccessMask |= AccessFlags.TransferReadBit | AccessFlags.TransferWriteBit;
        _context.Vk.CmdPipelineBarrier(_commands, PipelineStageFlags.ComputeShaderBit | PipelineStageFlags.TransferBit,
            PipelineStageFlags.ComputeShaderBit | PipelineStageFlags.TransferBit, 0, 1, &barrier, 0, null, 0, null);
        _writtenSinceBarrier.Clear();
        _readSinceBarrier.Clear();
        BarrierCount++;
    }

    /// <summary>Records a copy of <paramref name="bytes"/> bytes between device buffers (vkCmdCopyBuffer), ordered against the dispatches around it.</summary>
    public void Copy(VulkanBuffer source, ulong sourceOffset, VulkanBuffer destination, ulong destinationOffset, ulong bytes)
    {
        ThrowIfEnded();
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(destination);
        if (bytes == 0 || sourceOffset + bytes > source.Size || destinationOffset + bytes > destination.Size)
        {
            throw new ArgumentOutOfRangeException(nameof(bytes), $"Copy of {bytes} bytes from '{source.Name}'+{sourceOffset} to '{destination.Name}'+{destinationOffset} is out of range.");
        }
        if (_writtenSinceBarrier.Contains(source) || _writtenSinceBarrier.Contains(destination) || _readSinceBarrier.Contains(destination))
        {
            Barrier();
        }
        _readSinceBarrier.Add(source);
        _writtenSinceBarrier.Add(destination);
        var region = new BufferCopy { SrcOffset = sourceOffset, DstOffset = destinationOffset, Size = bytes };
        _context.Vk.CmdCopyBuffer(_commands, source.Handle, destination.Handle, 1, &region);
    }

    /// <summary>Records a copy from a device buffer into a mapped host buffer, readable after <see cref="Submit"/>.</summary>
    public void CopyToHost(VulkanBuffer source, ulong sourceOffset, VulkanReadback destination, ulong bytes)
    {
        ThrowIfEnded();
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(destination);
        if (bytes == 0 || sourceOffset + bytes > source.Size || bytes > destination.Size)
        {
            throw new ArgumentOutOfRangeException(nameof(bytes), $"Read-back of {bytes} bytes from '{source.Name}'+{sourceOffset} is out of range.");
        }
        if (_writtenSinceBarrier.Contains(source))
        {
            Barrier();
        }
        _readSinceBarrier.Add(source);
        var region = new BufferCopy { SrcOffset = sourceOffset, DstOffset = 0, Size = bytes };
        _context.Vk.CmdCopyBuffer(_commands, source.Handle, destination.Handle, 1, &region);
        var toHost = new MemoryBarrier { SType = StructureType.MemoryBarrier, SrcAccessMask = AccessFlags.TransferWriteBit, DstAccessMask = AccessFlags.HostReadBit };
        _context.Vk.CmdPipelineBarrier(_commands, PipelineStageFlags.TransferBit, PipelineStageFlags.HostBit, 0, 1, &toHost, 0, null, 0, null);
    }

    /// <summary>Records one dispatch of <paramref name="pipeline"/> over <paramref name="buffers"/> (binding i = buffers[i]).</summary>
    internal void Dispatch<TPush>(VulkanComputePipeline pipeline, ReadOnlySpan<VulkanBuffer> buffers, in TPush push, uint groupsX, uint groupsY = 1, uint groupsZ = 1)
        where TPush : unmanaged
    {
        ThrowIfEnded();
        VulkanPipelineDescription d = pipeline.Description;
        if (buffers.Length != d.BindingCount)
        {
            throw new ArgumentException($"Shader {d.Shader} takes {d.BindingCount} buffers, got {buffers.Length}.");
        }
        if (sizeof(TPush) != d.PushConstantBytes)
        {
            throw new ArgumentException($"Shader {d.Shader} takes {d.PushConstantBytes} bytes of push constants, got {sizeof(TPush)}.");
        }
        if (groupsX == 0 || groupsY == 0 || groupsZ == 0)
        {
            return;   // nothing to do, e.g. zero rows
        }
        uint max = _context.Device.MaxWorkgroupCount;
        if (groupsX > max || groupsY > max || groupsZ > max)
        {
            throw new VulkanException($"Dispatch of {d.Shader} needs {groupsX}x{groupsY}x{groupsZ} workgroups; the device allows {max} per dimension.");
        }

        bool hazard = false;
        for (int i = 0; i < buffers.Length; i++)
        {
            bool writes = (d.WrittenBindings & (1u << i)) != 0;
            hazard |= _writtenSinceBarrier.Contains(buffers[i]) || (writes && _readSinceBarrier.Contains(buffers[i]));
        }
        if (hazard)
        {
            Barrier();
        }
        for (int i = 0; i < buffers.Length; i++)
        {
            ((d.WrittenBindings & (1u << i)) != 0 ? _writtenSinceBarrier : _readSinceBarrier).Add(buffers[i]);
        }

        DescriptorSet set = AllocateSet(pipeline.SetLayout);
        var infos = stackalloc DescriptorBufferInfo[buffers.Length];
        var writesInfo = stackalloc WriteDescriptorSet[buffers.Length];
        for (int i = 0; i < buffers.Length; i++)
        {
            infos[i] = new DescriptorBufferInfo { Buffer = buffers[i].Handle, Offset = 0, Range = Vk.WholeSize };
            writesInfo[i] = new WriteDescriptorSet
            {
                SType = StructureType.WriteDescriptorSet,
                DstSet = set,
                DstBinding = (uint)i,
                DescriptorCount = 1,
                DescriptorType = DescriptorType.StorageBuffer,
                PBufferInfo = &infos[i],
            };
        }
        Vk vk = _context.Vk;
        vk.UpdateDescriptorSets(_context.Handle, (uint)buffers.Length, writesInfo, 0, null);
        vk.CmdBindPipeline(_commands, PipelineBindPoint.Compute, pipeline.Handle);
        vk.CmdBindDescriptorSets(_commands, PipelineBindPoint.Compute, pipeline.Layout, 0, 1, &set, 0, null);
        TPush copy = push;
        vk.CmdPushConstants(_commands, pipeline.Layout, ShaderStageFlags.ComputeBit, 0, (uint)sizeof(TPush), &copy);
        vk.CmdDispatch(_commands, groupsX, groupsY, groupsZ);
        DispatchCount++;
    }

    private DescriptorSet AllocateSet(DescriptorSetLayout layout)
    {
        Vk vk = _context.Vk;
        if (_setsLeftInPool == 0)
        {
            var size = new DescriptorPoolSize { Type = DescriptorType.StorageBuffer, DescriptorCount = SetsPerPool * DescriptorsPerSet };
            var info = new DescriptorPoolCreateInfo
            {
                SType = StructureType.DescriptorPoolCreateInfo,
                MaxSets = SetsPerPool,
                PoolSizeCount = 1,
                PPoolSizes = &size,
            };
            DescriptorPool pool;
            VulkanException.Check(vk.CreateDescriptorPool(_context.Handle, &info, null, &pool), "vkCreateDescriptorPool");
            _pools.Add(pool);
            _setsLeftInPool = SetsPerPool;
        }
        var alloc = new DescriptorSetAllocateInfo
        {
            SType = StructureType.DescriptorSetAllocateInfo,
            DescriptorPool = _pools[^1],
            DescriptorSetCount = 1,
            PSetLayouts = &layout,
        };
        DescriptorSet set;
        VulkanException.Check(vk.AllocateDescriptorSets(_context.Handle, &alloc, &set), "vkAllocateDescriptorSets");
        _setsLeftInPool--;
        return set;
    }

    /// <summary>Ends recording (the first time), submits the command buffer and waits for it.</summary>
    public void Submit()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (!_ended)
        {
            VulkanException.Check(_context.Vk.EndCommandBuffer(_commands), "vkEndCommandBuffer");
            _ended = true;
        }
        _context.SubmitAndWait(_commands, $"{DispatchCount} dispatches");
    }

    private void ThrowIfEnded()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_ended)
        {
            throw new InvalidOperationException("This recorder was submitted; record new work with a new recorder.");
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
        Vk vk = _context.Vk;
        CommandBuffer cb = _commands;
        vk.FreeCommandBuffers(_context.Handle, _context.CommandPool, 1, &cb);
        foreach (DescriptorPool pool in _pools)
        {
            vk.DestroyDescriptorPool(_context.Handle, pool, null);
        }
    }
}
