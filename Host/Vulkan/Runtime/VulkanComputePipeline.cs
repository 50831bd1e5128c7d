using Silk.NET.Core.Native;
using Silk.NET.Vulkan;

namespace PeftHost.Vulkan.Runtime;

/// <summary>A compute pipeline with its shader module, descriptor set layout and pipeline layout.</summary>
internal sealed unsafe class VulkanComputePipeline : IDisposable
{
    private readonly VulkanContext _context;
    private readonly ShaderModule _module;

    public VulkanComputePipeline(VulkanContext context, VulkanPipelineDescription description)
    {
        _context = context;
        Description = description;
        Vk vk = context.Vk;
        Device device = context.Handle;

        byte[] code = VulkanShaderLibrary.Load(description.Shader);
        fixed (byte* c = code)
        {
            var moduleInfo = new ShaderModuleCreateInfo { SType = StructureType.ShaderModuleCreateInfo, CodeSize = (nuint)code.Length, PCode = (uint*)c };
            ShaderModule module;
            VulkanException.Check(vk.CreateShaderModule(device, &moduleInfo, null, &module), $"vkCreateShaderModule ({description.Shader})");
            _module = module;
        }
        try
        {
            var bindings = stackalloc DescriptorSetLayoutBinding[description.BindingCount];
            for (int i = 0; i < description.BindingCount; i++)
            {
                bindings[i] = new DescriptorSetLayoutBinding
                {
                    Binding = (uint)i,
                    DescriptorType = DescriptorType.StorageBuffer,
                    DescriptorCount = 1,
                    StageFlags = ShaderStageFlags.ComputeBit,
                };
            }
            var setInfo = new DescriptorSetLayoutCreateInfo
            {
                SType = StructureType.DescriptorSetLayoutCreateInfo,
                BindingCount = (uint)description.BindingCount,
                PBindings = bindings,
            };
            DescriptorSetLayout setLayout;
            VulkanException.Check(vk.CreateDescriptorSetLayout(device, &setInfo, null, &setLayout), "vkCreateDescriptorSetLayout");
            SetLayout = setLayout;

            var range = new PushConstantRange { StageFlags = ShaderStageFlags.ComputeBit, Offset = 0, Size = (uint)description.PushConstantBytes };
            var layoutInfo = new PipelineLayoutCreateInfo
            {
                SType = StructureType.PipelineLayoutCreateInfo,
                SetLayoutCount = 1,
                PSetLayouts = &setLayout,
                PushConstantRangeCount = description.PushConstantBytes > 0 ? 1u : 0u,
                PPushConstantRanges = &range,
            };
            PipelineLayout layout;
            VulkanException.Check(vk.CreatePipelineLayout(device, &layoutInfo, null, &layout), "vkCreatePipelineLayout");
            Layout = layout;

            uint[] spec = description.SpecializationConstants;
            var entries = stackalloc SpecializationMapEntry[Math.Max(1, spec.Length)];
            for (int i = 0; i < spec.Length; i++)
            {
                entries[i] = new SpecializationMapEntry { ConstantID = (uint)i, Offset = (uint)(i * 4), Size = 4 };
            }
            byte* entryName = (byte*)SilkMarshal.StringToPtr("main");
            try
            {
                fixed (uint* specData = spec)
                {
                    var specInfo = new SpecializationInfo
                    {
                        MapEntryCount = (uint)spec.Length,
                        PMapEntries = entries,
                        DataSize = (nuint)(spec.Length * 4),
                        PData = specData,
                    };
                    var pipelineInfo = new ComputePipelineCreateInfo
                    {
                        SType = StructureType.ComputePipelineCreateInfo,
                        Stage = new PipelineShaderStageCreateInfo
                        {
                            SType = StructureType.PipelineShaderStageCreateInfo,
                            Stage = ShaderStageFlags.ComputeBit,
                            Module = _module,
                            PName = entryName,
                            PSpecializationInfo = spec.Length > 0 ? &specInfo : null,
                        },
                        Layout = layout,
                    };
                    Pipeline pipeline;
                    VulkanException.Check(vk.CreateComputePipelines(device, default, 1, &pipelineInfo, null, &pipeline), $"vkCreateComputePipelines ({description.Shader})");
                    Handle = pipeline;
                }
            }
            finally
            {
                SilkMarshal.Free((nint)entryName);
            }
            context.CheckValidation();
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public VulkanPipelineDescription Description { get; }
    public Pipeline Handle { get; }
    public PipelineLayout Layout { get; }
    public DescriptorSetLayout SetLayout { get; }

    public void Dispose()
    {
        Vk vk = _context.Vk;
        if (Handle.Handle != 0)
        {
            vk.DestroyPipeline(_context.Handle, Handle, null);
        }
        if (Layout.Handle != 0)
        {
            vk.DestroyPipelineLayout(_context.Handle, Layout, null);
        }
        if (SetLayout.Handle != 0)
        {
            vk.DestroyDescriptorSetLayout(_context.Handle, SetLayout, null);
        }
        if (_module.Handle != 0)
        {
            vk.DestroyShaderModule(_context.Handle, _module, null);
        }
    }
}
