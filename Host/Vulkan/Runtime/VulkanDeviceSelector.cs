using System.Globalization;

namespace PeftHost.Vulkan.Runtime;

/// <summary>
/// Picks the physical device: the override (an index, or a case-insensitive name substring) when
/// given, else discrete, then integrated, virtual and CPU devices, first in enumeration order.
/// </summary>
public static class VulkanDeviceSelector
{
    /// <summary>The environment variable that overrides the device.</summary>
    public const string EnvironmentVariable = "PEFTHOST_VULKAN_DEVICE";

    /// <summary>Selects one of <paramref name="devices"/>; throws a <see cref="VulkanException"/> listing them when none fits.</summary>
    public static VulkanDeviceInfo Select(IReadOnlyList<VulkanDeviceInfo> devices, string? selector)
    {
        if (devices.Count == 0)
        {
            throw new VulkanException(NoDeviceMessage);
        }
        IEnumerable<VulkanDeviceInfo> usable = devices.Where(d => d.HasComputeQueue && d.ApiVersion >= new Version(1, 1));
        if (!string.IsNullOrWhiteSpace(selector))
        {
            VulkanDeviceInfo? chosen = int.TryParse(selector, NumberStyles.None, CultureInfo.InvariantCulture, out int index)
                ? devices.FirstOrDefault(d => d.Index == index)
                : devices.FirstOrDefault(d => d.Name.Contains(selector, StringComparison.OrdinalIgnoreCase));
            if (chosen is null)
            {
                throw new VulkanException($"No Vulkan device matches '{selector}' ({EnvironmentVariable} or the Device option). Devices:\n  {string.Join("\n  ", devices)}");
            }
            if (!usable.Contains(chosen))
            {
                throw new VulkanException($"Vulkan device {chosen} cannot run compute work: it needs a compute queue and Vulkan 1.1 or later.");
            }
            return chosen;
        }
        return usable.OrderBy(d => d.Kind).ThenBy(d => d.Index).FirstOrDefault()
            ?? throw new VulkanException($"No Vulkan device has a compute queue and Vulkan 1.1 or later. Devices:\n  {string.Join("\n  ", devices)}");
    }

    /// <summary>What to do when no device exists.</summary>
    public const string NoDeviceMessage =
        "No Vulkan device found. Install a driver; for the CPU device (Mesa's lavapipe) on Debian/Ubuntu: " +
        "apt-get install -y mesa-vulkan-drivers libvulkan1 (and vulkan-validationlayers for validation).";
}
