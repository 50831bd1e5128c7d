namespace PeftHost.Llama.Sampling;

/// <summary>How the next token is chosen from logits (transformers' logits processors and their order).</summary>
public sealed record SamplingOptions
{
    /// <summary>Tokens to generate at most.</summary>
    public int MaxNewTokens { get; init; } = 32;

    /// <summary>Sample (true) or take the most likely token (false).</summary>
    public bool DoSample { get; init; }

    /// <summary>Softmax temperature when sampling.</summary>
    public double Temperature { get; init; } = 1.0;

    /// <summary>Keep the k most likely tokens when sampling (0 = off).</summary>
    public int TopK { get; init; }

    /// <summary>Nucleus probability when sampling (1 = off).</summary>
    public double TopP { get; init; } = 1.0;

    /// <summary>Penalty on tokens already in the sequence (1 = off): positive logits divided by it, negative ones multiplied.</summary>
    public double RepetitionPenalty { get; init; } = 1.0;

    /// <summary>Seed of the sampler (null: random).</summary>
    public long? Seed { get; init; }

    /// <summary>Ids that end generation (yielded, then stop).</summary>
    public IReadOnlySet<int> StopIds { get; init; } = new HashSet<int>();
}
