namespace PeftHost.Engine.Inference.Backends;

/// <summary>The engines a model can run on.</summary>
public enum InferenceBackendKind
{
    /// <summary>TorchSharp (libtorch): every PEFT method unmerged, any dtype, CPU or CUDA; training.</summary>
    Torch,

    /// <summary>llama.cpp through LLamaSharp: a GGUF base, quantized, fast on CPU; LoRA unmerged as GGUF-LoRA.</summary>
    Llama,

    /// <summary>Our Vulkan device forward (Silk.NET): a GGUF base on a GPU; LoRA unmerged as GGUF-LoRA.</summary>
    Vulkan,
}

/// <summary>Names of <see cref="InferenceBackendKind"/> on the command line.</summary>
public static class InferenceBackendKinds
{
    /// <summary>torch | llama | vulkan.</summary>
    public static InferenceBackendKind Parse(string text) => text.Trim().ToLowerInvariant() switch
    {
        "torch" => InferenceBackendKind.Torch,
        "llama" => InferenceBackendKind.Llama,
        "vulkan" => InferenceBackendKind.Vulkan,
        _ => throw new ArgumentException($"unknown backend '{text}': use torch, llama or vulkan."),
    };

    /// <summary>The command-line name.</summary>
    public static string Name(this InferenceBackendKind kind) => kind.ToString().ToLowerInvariant();
}
