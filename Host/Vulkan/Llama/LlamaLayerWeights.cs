using PeftHost.Vulkan.Runtime;

namespace PeftHost.Vulkan.Llama;

/// <summary>One decoder layer's weights on the device, with q|k|v and gate|up fused row-wise into one matrix each.</summary>
internal sealed class LlamaLayerWeights : IDisposable
{
    public required VulkanBuffer AttnNorm { get; init; }
    public required DeviceMatrix Qkv { get; init; }
    public required DeviceMatrix Output { get; init; }
    public required VulkanBuffer FfnNorm { get; init; }
    public required DeviceMatrix GateUp { get; init; }
    public required DeviceMatrix Down { get; init; }

    public void Dispose()
    {
        AttnNorm.Dispose();
        Qkv.Dispose();
        Output.Dispose();
        FfnNorm.Dispose();
        GateUp.Dispose();
        Down.Dispose();
    }
}
