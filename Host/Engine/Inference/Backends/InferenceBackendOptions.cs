using PeftHost.Formats.BitsAndBytes;
using PeftHost.Formats.Gguf;
using static TorchSharp.torch;

namespace PeftHost.Engine.Inference.Backends;

/// <summary>What <see cref="InferenceBackends.Open"/> loads and how.</summary>
public sealed record InferenceBackendOptions
{
    /// <summary>The engine.</summary>
    public InferenceBackendKind Kind { get; init; } = InferenceBackendKind.Torch;

    /// <summary>The Hugging Face model folder (config.json, weights, tokenizer): the source of every backend's weights and tokenizer.</summary>
    public required string ModelFolder { get; init; }

    /// <summary>The adapters, in order; all are selected by default.</summary>
    public IReadOnlyList<AdapterSpec> Adapters { get; init; } = [];

    /// <summary>The plugins folder the adapters' methods are loaded from.</summary>
    public required string PluginsFolder { get; init; }

    /// <summary>torch: the dtype of the weights.</summary>
    public ScalarType DType { get; init; } = ScalarType.Float32;

    /// <summary>torch: the device (default CPU).</summary>
    public Device? Device { get; init; }

    /// <summary>torch: quantize the base's linear layers as they load (QLoRA's 4-bit or 8-bit base), or null for the base as stored.</summary>
    public BitsAndBytesConfig? Quantization { get; init; }

    /// <summary>llama and vulkan: the weight type of the base GGUF exported from <see cref="ModelFolder"/>.</summary>
    public GgmlType Quant { get; init; } = GgmlType.F32;

    /// <summary>llama and vulkan: a base GGUF to run instead of exporting one (the folder still gives the tokenizer and the adapters' base).</summary>
    public string? GgufFile { get; init; }

    /// <summary>llama and vulkan: KV cache positions (default: the model's context length, at most 2048).</summary>
    public int? ContextSize { get; init; }

    /// <summary>llama: CPU threads (default: every core).</summary>
    public int? Threads { get; init; }

    /// <summary>Where exported GGUF files are kept (default: <see cref="Export.GgufCache.DefaultDirectory"/>).</summary>
    public string? CacheDirectory { get; init; }
}
