namespace PeftHost.Vulkan.Runtime;

/// <summary>What a compute pipeline is made of: a shader, its storage-buffer bindings, push constants and specialization.</summary>
/// <param name="Shader">Embedded shader name.</param>
/// <param name="BindingCount">Storage buffers at bindings 0..N-1.</param>
/// <param name="WrittenBindings">Bit i set when the shader writes binding i (for barrier tracking).</param>
/// <param name="PushConstantBytes">Size of the push constant block.</param>
/// <param name="SpecializationConstants">Values for constant_id 0, 1, ... (32-bit each).</param>
internal sealed record VulkanPipelineDescription(string Shader, int BindingCount, uint WrittenBindings, int PushConstantBytes, uint[] SpecializationConstants)
{
    public string Key => $"{Shader}|{BindingCount}|{WrittenBindings}|{PushConstantBytes}|{string.Join(",", SpecializationConstants)}";
}
