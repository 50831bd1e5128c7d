using PeftHost.Vulkan.Runtime;

namespace PeftHost.Vulkan.Kernels;

/// <summary>y = silu(a) * b = a / (1 + exp(-a)) * b elementwise: the gated activation of Llama's MLP (SwiGLU).</summary>
public sealed class SiluMulKernel(VulkanContext context) : ElementwiseKernel(context, "silu_mul");
