namespace PeftHost.Vulkan.Generation;

/// <summary>How tokens are chosen: greedy when <see cref="TopK"/> is 1, else top-k with temperature.</summary>
public sealed record TokenSampling
{
    /// <summary>Tokens to generate at most.</summary>
    public int MaxNewTokens { get; init; } = 32;

    /// <summary>Candidates kept (1 = greedy).</summary>
    public int TopK { get; init; } = 1;

    /// <summary>Softmax temperature over the candidates.</summary>
    public float Temperature { get; init; } = 1f;

    /// <summary>Seed of the host random numbers the device sampler uses.</summary>
    public int Seed { get; init; }

    /// <summary>Ids that end generation (yielded, then stop).</summary>
    public IReadOnlySet<int> StopIds { get; init; } = new HashSet<int>();
}
