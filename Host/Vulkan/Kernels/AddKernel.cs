using PeftHost.Vulkan.Runtime;

namespace PeftHost.Vulkan.Kernels;

/// <summary>y = a + b elementwise (residual connections; y may alias a).</summary>
public sealed class AddKernel(VulkanContext context) : ElementwiseKernel(context, "add");
