namespace PeftHost.Vulkan.Generation;

/// <summary>
/// Streams the tokens a causal language model generates after a prompt of token ids: the seam the
/// `generate` command uses, whichever backend runs the model (the Vulkan device forward implements
/// it here; a TorchSharp backend can implement it over its own forward).
/// </summary>
public interface ITokenStreamGenerator : IDisposable
{
    /// <summary>A short description of the backend (device, weight type) for logs.</summary>
    string Description { get; }

    /// <summary>Yields up to <see cref="TokenSampling.MaxNewTokens"/> ids after <paramref name="promptIds"/>, stopping after a stop id.</summary>
    IEnumerable<int> Generate(IReadOnlyList<int> promptIds, TokenSampling sampling);
}
