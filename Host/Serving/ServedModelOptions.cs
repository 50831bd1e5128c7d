using PeftHost.Engine.Inference;
using PeftHost.Engine.Inference.Backends;
using PeftHost.Formats.Gguf;
using static TorchSharp.torch;

namespace PeftHost.Serving;

/// <summary>What <see cref="ServedModel.Open"/> loads and how it schedules requests.</summary>
public sealed record ServedModelOptions
{
    /// <summary>The default rows decoded together (<see cref="MaxBatch"/>).</summary>
    public const int DefaultMaxBatch = 8;

    /// <summary>The default requests waiting at most (<see cref="MaxQueue"/>).</summary>
    public const int DefaultMaxQueue = 64;

    /// <summary>The Hugging Face model folder (config.json, weights, tokenizer).</summary>
    public required string ModelFolder { get; init; }

    /// <summary>The adapters loaded at start, each served under its name.</summary>
    public IReadOnlyList<AdapterSpec> Adapters { get; init; } = [];

    /// <summary>The base model's name in requests (default: the last path component of <see cref="ModelFolder"/>).</summary>
    public string? ServedModelName { get; init; }

    /// <summary>The engine: torch (continuous batching, every PEFT method) or llama (llama.cpp, LoRA, one sequence at a time).</summary>
    public InferenceBackendKind Backend { get; init; } = InferenceBackendKind.Torch;

    /// <summary>The plugins folder the adapters' methods come from (ignored when a catalog is handed to <see cref="ServedModel.Open"/>).</summary>
    public string PluginsFolder { get; init; } = Path.Combine(AppContext.BaseDirectory, "plugins");

    /// <summary>Reload a plugin when its folder changes while serving (ignored when a catalog is handed to <see cref="ServedModel.Open"/>).</summary>
    public bool HotReload { get; init; }

    /// <summary>torch: the device (default CPU).</summary>
    public Device? Device { get; init; }

    /// <summary>torch: the weights' dtype.</summary>
    public ScalarType DType { get; init; } = ScalarType.Float32;

    /// <summary>CPU threads (torch: intra-op; llama: decode threads; null: all).</summary>
    public int? Threads { get; init; }

    /// <summary>Sequences decoded together at most (torch; the llama backend decodes one at a time).</summary>
    public int MaxBatch { get; init; } = DefaultMaxBatch;

    /// <summary>Requests waiting for a row at most; one more is refused (HTTP 429).</summary>
    public int MaxQueue { get; init; } = DefaultMaxQueue;

    /// <summary>llama: KV cache positions (default: the model's context, at most 2048).</summary>
    public int? ContextSize { get; init; }

    /// <summary>llama: the weight type of the base GGUF exported from <see cref="ModelFolder"/>.</summary>
    public GgmlType Quant { get; init; } = GgmlType.Q4_0;

    /// <summary>llama: where exported GGUF files are kept.</summary>
    public string? CacheDirectory { get; init; }
}
