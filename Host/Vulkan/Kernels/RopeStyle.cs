namespace PeftHost.Vulkan.Kernels;

/// <summary>Which elements of a head RoPE rotates together.</summary>
public enum RopeStyle
{
    /// <summary>Adjacent pairs (2i, 2i+1), GGML's "normal" mode (GPT-J, Llama in Meta's original weights).</summary>
    Normal,
    /// <summary>Halves (i, i + d/2), "rotate half": GPT-NeoX and Llama in Hugging Face weights.</summary>
    Neox,
}
