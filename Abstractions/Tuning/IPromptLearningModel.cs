using static TorchSharp.torch;

namespace PeftHost.Abstractions.Tuning;

/// <summary>What a prompt-learning tuner produces for the model's forward pass.</summary>
public enum PromptKind
{
    /// <summary>Virtual token embeddings prepended to the input embeddings: [batch, tokens, token_dim] (prompt tuning, p-tuning).</summary>
    InputEmbeddings,

    /// <summary>Per-layer key/value prefixes: [layers * 2, batch, heads, tokens, head_dim] (prefix tuning).</summary>
    PastKeyValues,
}

/// <summary>
/// A tuner model for prompt learning (PEFT's prompt tuning, prefix tuning, p-tuning). It injects no
/// layers: the host's PEFT model asks it for the active adapter's prompt and feeds it to the model.
/// Merging is not possible for these methods.
/// </summary>
public interface IPromptLearningModel : ITunerModel
{
    /// <summary>What <see cref="GetPrompt"/> returns.</summary>
    PromptKind Kind { get; }

    /// <summary>The number of virtual tokens of an adapter.</summary>
    int NumVirtualTokens(string adapter);

    /// <summary>The active adapter's prompt for a batch (see <see cref="PromptKind"/> for the shape).</summary>
    Tensor GetPrompt(long batchSize);
}
