using Microsoft.Extensions.Logging;
using static TorchSharp.torch;

namespace PeftHost.Abstractions.Tuning;

/// <summary>What the host gives a tuner when it attaches to a model.</summary>
/// <param name="Logger">The logger to report through (named after the plugin by the host).</param>
public sealed record TunerContext(ILogger Logger)
{
    /// <summary>
    /// transformers' <c>model_type</c> of the model (<c>"llama"</c>, <c>"gpt2"</c>, <c>"bert"</c>, ...), or null
    /// when the host does not know it (a user's own module). Contract 1.1: PEFT fills a missing
    /// <c>target_modules</c> from a per-model-type table (<c>TRANSFORMERS_MODELS_TO_*_TARGET_MODULES_MAPPING</c>);
    /// a tuner reads the type here to do the same.
    /// </summary>
    public string? ModelType { get; init; }

    /// <summary>
    /// The base model's tokenizer, when the host has one (contract 1.1): text to token ids as transformers'
    /// <c>tokenizer(text)["input_ids"]</c> gives them, the tokenizer's special tokens (e.g. bos) included.
    /// Null when the host was given none; a method that needs it (prompt tuning's <c>TEXT</c> initialisation)
    /// then refuses the config, saying so.
    /// </summary>
    public Func<string, IReadOnlyList<int>>? Tokenize { get; init; }

    /// <summary>
    /// The base model's input embeddings (transformers' <c>get_input_embeddings()</c> applied, with no scaling or
    /// position added), when the host knows them (contract 1.1): int64 token ids [batch, seq] to
    /// [batch, seq, hidden] on the model's device, recorded by autograd as any forward is. Null when unknown.
    /// </summary>
    public Func<Tensor, Tensor>? EmbedTokens { get; init; }
}
