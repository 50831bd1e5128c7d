using Microsoft.Extensions.Logging;

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
}
