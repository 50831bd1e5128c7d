using System.Text.Json.Nodes;
using PeftHost.Vulkan.Runtime;

namespace PeftHost.Cli.Commands;

/// <summary>The "vulkan" section of `pefthost doctor --json`: every device, and the features the kernels use on it.</summary>
internal static class VulkanDoctorJson
{
    public static JsonObject Build()
    {
        var result = new JsonObject();
        try
        {
            using VulkanInstance instance = VulkanInstance.Create(VulkanValidation.Off);
            var devices = new JsonArray();
            foreach (VulkanDeviceInfo d in instance.Devices)
            {
                devices.Add(new JsonObject
                {
                    ["index"] = d.Index,
                    ["name"] = d.Name,
                    ["type"] = d.Kind.ToString(),
                    ["driver"] = d.Driver,
                    ["api_version"] = d.ApiVersion.ToString(),
                    ["memory_heaps"] = new JsonArray([.. d.MemoryHeaps.Select(h => (JsonNode)new JsonObject { ["bytes"] = h.Size, ["device_local"] = h.DeviceLocal })]),
                    ["subgroup_size"] = d.SubgroupSize,
                    ["compute_queue"] = d.HasComputeQueue,
                    ["features_used"] = new JsonArray([.. Enum.GetValues<VulkanFeatures>()
                        .Where(f => f != VulkanFeatures.None && f != VulkanFeatures.Storage8Bit && d.SupportedFeatures.HasFlag(f))
                        .Select(f => (JsonNode)f.ToString())]),
                    ["features_supported"] = d.SupportedFeatures.ToString(),
                });
            }
            result["devices"] = devices;
            result["validation_layer_installed"] = VulkanInstance.IsValidationLayerInstalled();
        }
        catch (Exception e) when (e is VulkanException or DllNotFoundException or InvalidOperationException)
        {
            result["devices"] = new JsonArray();
            result["error"] = e.Message;
        }
        return result;
    }
}
