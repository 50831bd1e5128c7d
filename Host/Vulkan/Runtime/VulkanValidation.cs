namespace PeftHost.Vulkan.Runtime;

/// <summary>Whether to run with the Khronos validation layer.</summary>
public enum VulkanValidation
{
    /// <summary>On when installed in Debug builds or when PEFTHOST_VULKAN_VALIDATION=1; off otherwise.</summary>
    Auto,
    /// <summary>Off.</summary>
    Off,
    /// <summary>On when the layer is installed, off (silently) when it is not.</summary>
    WhenInstalled,
    /// <summary>On; an error when the layer is not installed.</summary>
    Required,
}
