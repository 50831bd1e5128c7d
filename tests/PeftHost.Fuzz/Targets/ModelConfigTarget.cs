using PeftHost.Models.Config;

namespace PeftHost.Fuzz.Targets;

/// <summary>A model's config.json through <see cref="ModelConfigReader"/>; an accepted config must be one a model can be built from.</summary>
public sealed class ModelConfigTarget : FuzzTarget
{
    /// <inheritdoc />
    public override string Name => "config-json";

    /// <inheritdoc />
    public override string Description => "config.json: model_type, architectures, sizes, rope_scaling, per-architecture fields";

    /// <inheritdoc />
    protected override void Run(byte[] input)
    {
        string path = FuzzScratch.Fresh("config.json", input);
        ModelConfig c = ModelConfigReader.Read(path);
        // What the model constructors rely on (a size of 0 or less would reach libtorch).
        if (c.VocabSize <= 0 || c.HiddenSize <= 0 || c.NumLayers < 0 || c.NumHeads <= 0 || c.MaxPositions <= 0)
            throw Inconsistent($"accepted sizes vocab {c.VocabSize}, hidden {c.HiddenSize}, layers {c.NumLayers}, heads {c.NumHeads}, positions {c.MaxPositions}");
        switch (c)
        {
            case LlamaConfig l when l.HeadDim <= 0 || l.IntermediateSize <= 0 || l.NumKeyValueHeads <= 0 || l.NumHeads % l.NumKeyValueHeads != 0 || l.HeadDim % 2 != 0
                || !(l.RmsNormEps > 0) || !(l.RopeTheta > 0) || l.SlidingWindow <= 0 || !IsProbability(l.AttentionDropout) || l.RopeScaling is { Factor: not > 0 }:
                throw Inconsistent($"accepted llama fields head_dim {l.HeadDim}, intermediate {l.IntermediateSize}, kv heads {l.NumKeyValueHeads}, eps {l.RmsNormEps}, theta {l.RopeTheta}, window {l.SlidingWindow}");
            case BertConfig b when b.HiddenSize % b.NumHeads != 0 || b.IntermediateSize <= 0 || b.TypeVocabSize <= 0 || b.NumLabels <= 0
                || b.PadTokenId < 0 || b.PadTokenId >= b.VocabSize || !(b.LayerNormEps > 0) || !IsProbability(b.HiddenDropout) || !IsProbability(b.AttentionDropout):
                throw Inconsistent($"accepted bert fields hidden {b.HiddenSize} / heads {b.NumHeads}, intermediate {b.IntermediateSize}, types {b.TypeVocabSize}, labels {b.NumLabels}, pad {b.PadTokenId}");
            case Gpt2Config g when g.HiddenSize % g.NumHeads != 0 || g.InnerSize <= 0 || !(g.LayerNormEps > 0) || !IsProbability(g.EmbdDropout) || !IsProbability(g.AttnDropout) || !IsProbability(g.ResidDropout):
                throw Inconsistent($"accepted gpt2 fields hidden {g.HiddenSize} / heads {g.NumHeads}, inner {g.InnerSize}, eps {g.LayerNormEps}");
        }
    }

    private static bool IsProbability(double p) => p >= 0 && p < 1;

    /// <inheritdoc />
    protected override bool IsCleanError(Exception e) => e is InvalidDataException or NotSupportedException;
}
