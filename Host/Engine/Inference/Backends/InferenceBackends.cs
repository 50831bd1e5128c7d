using PeftHost.Tokenizers;

namespace PeftHost.Engine.Inference.Backends;

/// <summary>Opens the backend <see cref="InferenceBackendOptions.Kind"/> names: the one place the engines are wired.</summary>
public static class InferenceBackends
{
    /// <summary>Loads the model (and its adapters) on the chosen backend.</summary>
    /// <exception cref="NotSupportedException">A bitsandbytes quantization is asked of a GGUF backend (they take a GGUF weight type instead).</exception>
    public static IInferenceBackend Open(InferenceBackendOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Quantization is { } q && options.Kind != InferenceBackendKind.Torch)
            throw new NotSupportedException($"a {q} base (bitsandbytes quantization) runs on the torch backend; the {options.Kind.Name()} backend runs a GGUF base: choose its weight type with --quant.");
        return options.Kind switch
        {
            InferenceBackendKind.Torch => TorchBackend.Open(options),
            InferenceBackendKind.Llama => LlamaBackend.Open(options),
            InferenceBackendKind.Vulkan => VulkanBackend.Open(options),
            _ => throw new ArgumentOutOfRangeException(nameof(options), options.Kind, "Unknown backend."),
        };
    }

    /// <summary>The folder's tokenizer, or null when it has no tokenizer files; a broken tokenizer is still an error.</summary>
    public static ITextTokenizer? TryTokenizer(string modelFolder) =>
        File.Exists(Path.Combine(modelFolder, "tokenizer.json")) || File.Exists(Path.Combine(modelFolder, "vocab.txt"))
            ? TokenizerLoader.FromDirectory(modelFolder)
            : null;
}
