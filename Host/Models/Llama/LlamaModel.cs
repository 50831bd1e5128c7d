using PeftHost.Models.Config;
using PeftHost.Models.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftHost.Models.Llama;

/// <summary>The decoder stack (transformers' <c>LlamaModel</c>, registered as <c>model</c> in the causal LM).</summary>
public sealed class LlamaModel : nn.Module, IGradientCheckpointing
{
    private nn.Module<Tensor, Tensor> embed_tokens;
    private readonly ModuleList<LlamaDecoderLayer> layers = new();
    // Module<Tensor, Tensor> fields so that tuners can wrap them (LN tuning trains a copy of each norm).
    private nn.Module<Tensor, Tensor> norm;
    private readonly LlamaConfig _config;
    private readonly RotaryEmbedding _rope;
    private CheckpointedLayers? _pending;

    /// <summary>Builds the stack (random weights until a checkpoint is loaded).</summary>
    public LlamaModel(LlamaConfig c) : base(nameof(LlamaModel))
    {
        _config = c;
        embed_tokens = nn.Embedding(c.VocabSize, c.HiddenSize);
        for (int i = 0; i < c.NumLayers; i++) layers.Add(new LlamaDecoderLayer(c, i));
        norm = new RmsNorm(c.HiddenSize, c.RmsNormEps);
        _rope = new RotaryEmbedding(c.HeadDim, c.RopeTheta, c.RopeScaling, c.MaxPositions);
        register_module("embed_tokens", embed_tokens);
        register_module("layers", layers);
        register_module("norm", norm);
    }

    /// <summary>The input embedding (what a tied head shares).</summary>
    public nn.Module<Tensor, Tensor> EmbedTokens => embed_tokens;

    /// <summary>The final norm's weight (the base's, when a tuner wraps the norm): the model's dtype and device.</summary>
    internal Tensor Reference => norm.parameters().First();

    /// <summary>The RoPE tables.</summary>
    public RotaryEmbedding Rope => _rope;

    /// <inheritdoc />
    public bool GradientCheckpointing { get; set; }

    /// <summary>Final hidden states [b, s, hidden].</summary>
    public Tensor Forward(Tensor inputIds, Tensor? attentionMask, KvCache? cache, long start)
    {
        using var scope = NewDisposeScope();
        return scope.MoveToOuter(ForwardEmbeddings(embed_tokens.forward(inputIds), attentionMask, cache, start));
    }

    /// <summary>Final hidden states [b, s, hidden] from input embeddings [b, s, hidden] (transformers' <c>inputs_embeds</c>).</summary>
    public Tensor ForwardEmbeddings(Tensor inputsEmbeds, Tensor? attentionMask, KvCache? cache, long start)
    {
        using var scope = NewDisposeScope();
        long s = inputsEmbeds.shape[1];
        Tensor hidden = inputsEmbeds;
        (Tensor cos, Tensor sin) = _rope.Slice(start, s, hidden.dtype, hidden.device);
        long keys = start + s;
        bool windowBites = _config.SlidingWindow is int w && keys > w;
        // The fused causal path covers a prompt from position 0 with no padding and no window; a
        // single decoded token with no padding and no window needs no mask at all.
        Tensor? mask = attentionMask is not null || windowBites || (start > 0 && s > 1)
            ? AttentionMasks.Build(s, keys, start, causal: true, windowBites ? _config.SlidingWindow : null, attentionMask, hidden.dtype, hidden.device)
            : null;
        return scope.MoveToOuter(norm.forward(Layers(hidden, cos, sin, mask, cache, start)));
    }

    /// <summary>
    /// Final hidden states of packed rows: positions restart per document (<paramref name="positionIds"/>)
    /// and a token attends only to earlier tokens of its own document (<paramref name="sequenceIds"/>, 0 = padding).
    /// </summary>
    public Tensor ForwardPacked(Tensor inputIds, Tensor positionIds, Tensor sequenceIds)
    {
        using var scope = NewDisposeScope();
        Tensor hidden = embed_tokens.forward(inputIds);
        long b = hidden.shape[0], s = hidden.shape[1];
        long positions = positionIds.max().item<long>() + 1;
        (Tensor cosTable, Tensor sinTable) = _rope.Slice(0, positions, hidden.dtype, hidden.device);
        Tensor flat = positionIds.flatten();
        Tensor cos = cosTable.index_select(0, flat).view(b, 1, s, -1);
        Tensor sin = sinTable.index_select(0, flat).view(b, 1, s, -1);
        Tensor mask = AttentionMasks.Packed(sequenceIds, _config.SlidingWindow, hidden.dtype, hidden.device);
        return scope.MoveToOuter(norm.forward(Layers(hidden, cos, sin, mask, null, 0)));
    }

    private Tensor Layers(Tensor hidden, Tensor cos, Tensor sin, Tensor? mask, KvCache? cache, long start)
    {
        if (GradientCheckpointing && training && cache is null && torch.is_grad_enabled())
        {
            _pending?.Dispose();
            (_pending, Tensor output) = CheckpointedLayers.Run(layers.Count, (i, h, c, s, m) => layers[i].Forward(h, c, s, m, null, 0), hidden, cos, sin, mask);
            return output;
        }
        foreach (LlamaDecoderLayer layer in layers) hidden = layer.Forward(hidden, cos, sin, mask, cache, start);
        return hidden;
    }

    /// <inheritdoc />
    public void BackwardCheckpointedLayers()
    {
        CheckpointedLayers? pending = _pending;
        _pending = null;
        if (pending is null) return;
        using (pending) pending.Backward();
    }

    /// <summary>
    /// Final hidden states [b, s, hidden] for a batch whose rows are at different positions: row i's tokens
    /// sit at <paramref name="rowStarts"/>[i] .. + s, are written into its own row of <paramref name="cache"/>
    /// there, and attend to that row's cached positions only (continuous batching).
    /// </summary>
    public Tensor ForwardEmbeddingsRows(Tensor inputsEmbeds, KvCache cache, IReadOnlyList<long> rowStarts)
    {
        using var scope = NewDisposeScope();
        long b = inputsEmbeds.shape[0], s = inputsEmbeds.shape[1];
        Tensor hidden = inputsEmbeds;
        Tensor starts = torch.tensor(rowStarts.ToArray(), dtype: ScalarType.Int64, device: hidden.device);
        Tensor positions = starts.unsqueeze(1) + torch.arange(s, dtype: ScalarType.Int64, device: hidden.device).unsqueeze(0);
        long keys = rowStarts.Max() + s;
        (Tensor cos, Tensor sin) = _rope.Gather(positions, keys - 1, hidden.dtype, hidden.device);
        int? window = _config.SlidingWindow is int w && keys > w ? w : null;
        Tensor mask = AttentionMasks.BuildRows(s, keys, starts, window, hidden.dtype, hidden.device);
        using (cache.BeginRows(rowStarts, s))
            foreach (LlamaDecoderLayer layer in layers) hidden = layer.Forward(hidden, cos, sin, mask, cache, start: 0);
        return scope.MoveToOuter(norm.forward(hidden));
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _rope.Dispose();
            _pending?.Dispose();
        }
        base.Dispose(disposing);
    }
}
