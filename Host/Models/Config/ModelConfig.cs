using System.Text.Json.Nodes;

namespace PeftHost.Models.Config;

/// <summary>A model's <c>config.json</c>, typed per <c>model_type</c>. The raw object is kept for round trips.</summary>
public abstract record ModelConfig
{
    /// <summary>transformers' <c>model_type</c> ("llama", "bert", ...).</summary>
    public required string ModelType { get; init; }

    /// <summary>The first of <c>architectures</c> (e.g. "LlamaForCausalLM"), the class to build.</summary>
    public required string Architecture { get; init; }

    /// <summary>Vocabulary size.</summary>
    public required int VocabSize { get; init; }

    /// <summary>Hidden size.</summary>
    public required int HiddenSize { get; init; }

    /// <summary>Number of layers.</summary>
    public required int NumLayers { get; init; }

    /// <summary>Number of attention heads.</summary>
    public required int NumHeads { get; init; }

    /// <summary>Longest sequence the position embeddings (or RoPE tables) are sized for.</summary>
    public required int MaxPositions { get; init; }

    /// <summary>Whether the output head shares the input embedding's weight.</summary>
    public bool TieWordEmbeddings { get; init; }

    /// <summary>The config.json object as read (or as it will be written).</summary>
    public JsonObject Raw { get; init; } = [];
}
