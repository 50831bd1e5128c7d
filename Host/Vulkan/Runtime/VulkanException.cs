using Silk.NET.Vulkan;

namespace PeftHost.Vulkan.Runtime;

/// <summary>A Vulkan failure: no device, no memory, a missing feature, a failed call or a validation error.</summary>
public class VulkanException : Exception
{
    /// <summary>Creates the exception with a message.</summary>
    public VulkanException(string message) : base(message) { }

    /// <summary>Creates the exception for a failed call.</summary>
    public VulkanException(string message, Result result) : base($"{message}: {result}") => Result = result;

    /// <summary>The Vulkan result code, when a call failed.</summary>
    public Result? Result { get; }

    /// <summary>Throws when <paramref name="result"/> is not Success, naming what was attempted.</summary>
    internal static void Check(Result result, string what)
    {
        if (result == Silk.NET.Vulkan.Result.Success)
        {
            return;
        }
        string hint = result switch
        {
            Silk.NET.Vulkan.Result.ErrorOutOfDeviceMemory => " (out of device memory)",
            Silk.NET.Vulkan.Result.ErrorOutOfHostMemory => " (out of host memory)",
            Silk.NET.Vulkan.Result.ErrorDeviceLost => " (device lost)",
            Silk.NET.Vulkan.Result.ErrorFeatureNotPresent => " (a requested feature is not present)",
            Silk.NET.Vulkan.Result.ErrorExtensionNotPresent => " (a requested extension is not present)",
            Silk.NET.Vulkan.Result.ErrorLayerNotPresent => " (a requested layer is not installed)",
            Silk.NET.Vulkan.Result.ErrorIncompatibleDriver => " (no compatible Vulkan driver; install mesa-vulkan-drivers for lavapipe)",
            _ => "",
        };
        throw new VulkanException($"Vulkan: {what} failed{hint}", result);
    }
}
