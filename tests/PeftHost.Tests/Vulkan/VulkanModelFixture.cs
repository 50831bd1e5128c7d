using PeftHost.Engine.Export;
using PeftHost.Engine.Inference;
using PeftHost.Formats.Gguf;
using PeftHost.Tests.Support;
using PeftHost.Vulkan.Llama;
using PeftHost.Vulkan.Runtime;

namespace PeftHost.Tests.Vulkan;

/// <summary>
/// Helpers for the device-forward tests: one Vulkan context per test (lavapipe in CI; a missing
/// device throws, so the test fails rather than skips) and models exported to temporary GGUF files.
/// </summary>
internal static class VulkanModels
{
    public static VulkanContext CreateContext()
    {
        try
        {
            return VulkanContext.Create(new VulkanContextOptions { Validation = VulkanValidation.WhenInstalled });
        }
        catch (VulkanException e)
        {
            throw new InvalidOperationException("These tests need a Vulkan device (CI installs mesa-vulkan-drivers and libvulkan1; lavapipe is enough). " + e.Message, e);
        }
    }

    /// <summary>Exports <paramref name="modelFolder"/> (with adapters merged) to a temporary GGUF file and loads it on the device.</summary>
    public static LlamaDeviceModel Load(VulkanContext context, string modelFolder, GgmlType quant, params string[] adapterFolders)
    {
        string path = Path.Combine(Path.GetTempPath(), $"pefthost-vk-{Guid.NewGuid():N}.gguf");
        try
        {
            LlamaGgufExporter.Export(modelFolder, [.. adapterFolders.Select(AdapterSpec.FromFolder)], PluginDirs.Installed, quant, path);
            using GgufFile file = GgufFile.Open(path);
            return new LlamaDeviceModel(context, file, contextSize: 64, maxBatch: 5);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
