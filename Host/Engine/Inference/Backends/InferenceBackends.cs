using PeftHost.Tokenizers;

namespace PeftHost.Engine.Inference.Backends;

/// <summary>Opens the backend <see cref="InferenceBackendOptions.Kind"/> names: the one place the engines are wired.</summary>
public static class InferenceBackends
{
    /// <summary>Loads the model (and its adapters) on the chosen backend.</summary>
    public static IInferenceBackend Open(InferenceBackendOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
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
