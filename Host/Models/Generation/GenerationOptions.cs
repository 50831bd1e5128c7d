namespace PeftHost.Models.Generation;

/// <summary>Decoding settings, with transformers' meanings.</summary>
public sealed record GenerationOptions
{
    /// <summary>Tokens to generate at most.</summary>
    public int MaxNewTokens { get; init; } = 32;

    /// <summary>Sample (true) or take the most likely token (false, greedy).</summary>
    public bool DoSample { get; init; }

    /// <summary>Logits are divided by this before sampling (1 = unchanged).</summary>
    public double Temperature { get; init; } = 1.0;

    /// <summary>Keep only the k most likely tokens (0 = off).</summary>
    public int TopK { get; init; }

    /// <summary>Keep the smallest set of tokens whose probability reaches p (1 = off).</summary>
    public double TopP { get; init; } = 1.0;

    /// <summary>CTRL's penalty on tokens already in the sequence (1 = off): positive logits divided, negative multiplied.</summary>
    public double RepetitionPenalty { get; init; } = 1.0;

    /// <summary>Generation stops after producing one of these (it is yielded).</summary>
    public IReadOnlyCollection<long> StopTokenIds { get; init; } = [];

    /// <summary>Use the KV cache (false: recompute the whole sequence every step; same tokens, slower).</summary>
    public bool UseCache { get; init; } = true;

    /// <summary>Seed of the sampling generator (null: nondeterministic).</summary>
    public long? Seed { get; init; }
}
