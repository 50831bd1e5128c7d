namespace PeftHost.Vulkan.Runtime;

/// <summary>The kind of a physical device, in the order devices are preferred.</summary>
public enum VulkanDeviceKind
{
    /// <summary>A discrete GPU.</summary>
    Discrete,
    /// <summary>A GPU integrated with the CPU.</summary>
    Integrated,
    /// <summary>A virtualised GPU.</summary>
    Virtual,
    /// <summary>A CPU implementation such as Mesa's lavapipe.</summary>
    Cpu,
    /// <summary>Anything else.</summary>
    Other,
}
