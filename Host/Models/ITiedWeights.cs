namespace PeftHost.Models;

/// <summary>A model whose parameters share tensors under two names (tied embeddings).</summary>
public interface ITiedWeights
{
    /// <summary>Each tied name and the name it shares its tensor with (e.g. lm_head.weight → model.embed_tokens.weight).</summary>
    IReadOnlyDictionary<string, string> TiedParameters { get; }
}
