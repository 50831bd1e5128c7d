namespace PeftHost.Vulkan.Runtime;

/// <summary>The validation layer reported errors: the program used Vulkan incorrectly.</summary>
public sealed class VulkanValidationException : VulkanException
{
    /// <summary>Creates the exception from the layer's messages.</summary>
    public VulkanValidationException(IReadOnlyList<string> messages)
        : base($"Vulkan validation reported {messages.Count} error(s):\n" + string.Join("\n", messages)) => Messages = messages;

    /// <summary>The validation messages.</summary>
    public IReadOnlyList<string> Messages { get; }
}
