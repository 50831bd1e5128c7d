using PeftHost.Models.Config;
using PeftHost.Models.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftHost.Models.Llama;

/// <summary>
/// transformers' <c>LlamaForCausalLM</c> (also Mistral and Qwen2): parameter names are the state
/// dict keys (<c>model.layers.0.self_attn.q_proj.weight</c>, <c>lm_head.weight</c>). Every Linear
/// and Embedding sits in a <c>Module&lt;Tensor, Tensor&gt;</c> field so tuners can wrap it.
/// </summary>
public sealed class LlamaForCausalLM : nn.Module<Tensor, Tensor>, ICausalLM, IPackedCausalLM, IGradientCheckpointing, ITiedWeights
{
    private readonly LlamaModel model;
    private nn.Module<Tensor, Tensor> lm_head;
    private readonly LlamaConfig _config;

    /// <summary>Builds the model with random weights; with tied embeddings the head shares the embedding's weight.</summary>
    public LlamaForCausalLM(LlamaConfig config) : base(nameof(LlamaForCausalLM))
    {
        _config = config;
        model = new LlamaModel(config);
        lm_head = OutputHead.Create(config.HiddenSize, config.VocabSize, config.TieWordEmbeddings ? (Embedding)model.EmbedTokens : null);
        register_module("model", model);
        register_module("lm_head", lm_head);
    }

    /// <inheritdoc />
    public ModelConfig Config => _config;

    /// <inheritdoc />
    public IReadOnlyDictionary<string, string> TiedParameters =>
        _config.TieWordEmbeddings ? new Dictionary<string, string> { ["lm_head.weight"] = "model.embed_tokens.weight" } : new Dictionary<string, string>();

    /// <summary>The decoder stack.</summary>
    public LlamaModel Model => model;

    /// <inheritdoc />
    public KvCache CreateCache(long batch, long capacity)
    {
        Tensor w = model.parameters().First();
        return new KvCache(_config.NumLayers, batch, _config.NumKeyValueHeads, capacity, _config.HeadDim, w.dtype, w.device);
    }

    /// <summary>Logits [b, s, vocab] for input ids [b, s] (no cache, no padding).</summary>
    public override Tensor forward(Tensor inputIds) => Forward(inputIds);

    /// <inheritdoc />
    public Tensor Forward(Tensor inputIds, Tensor? attentionMask = null, KvCache? cache = null, long startPosition = 0, bool lastTokenOnly = false)
    {
        Tensor reference = model.Reference;
        ModelInputValidator.TokenIds(inputIds, _config.VocabSize, reference.device);
        CheckContext(inputIds.shape[0], inputIds.shape[1], attentionMask, cache, startPosition, reference);
        using var scope = NewDisposeScope();
        Tensor hidden = model.Forward(inputIds, attentionMask, cache, startPosition);
        return scope.MoveToOuter(Head(hidden, cache, startPosition, lastTokenOnly));
    }

    /// <inheritdoc />
    public Tensor ForwardPacked(Tensor inputIds, Tensor positionIds, Tensor sequenceIds)
    {
        using var scope = NewDisposeScope();
        return scope.MoveToOuter(lm_head.forward(model.ForwardPacked(inputIds, positionIds, sequenceIds)));
    }

    /// <inheritdoc />
    public bool GradientCheckpointing
    {
        get => model.GradientCheckpointing;
        set => model.GradientCheckpointing = value;
    }

    /// <inheritdoc />
    public void BackwardCheckpointedLayers() => model.BackwardCheckpointedLayers();

    /// <inheritdoc />
    public Tensor EmbedInputs(Tensor inputIds)
    {
        ModelInputValidator.TokenIds(inputIds, _config.VocabSize, model.Reference.device);
        return model.EmbedTokens.forward(inputIds);
    }

    /// <inheritdoc />
    public Tensor ForwardEmbeddings(Tensor inputsEmbeds, Tensor? attentionMask = null, KvCache? cache = null, long startPosition = 0, bool lastTokenOnly = false)
    {
        Tensor reference = model.Reference;
        ModelInputValidator.Embeddings(inputsEmbeds, _config.HiddenSize, reference.dtype, reference.device);
        CheckContext(inputsEmbeds.shape[0], inputsEmbeds.shape[1], attentionMask, cache, startPosition, reference);
        using var scope = NewDisposeScope();
        Tensor hidden = model.ForwardEmbeddings(inputsEmbeds, attentionMask, cache, startPosition);
        return scope.MoveToOuter(Head(hidden, cache, startPosition, lastTokenOnly));
    }

    /// <inheritdoc />
    public Tensor ForwardRows(Tensor inputIds, KvCache cache, IReadOnlyList<long> rowStarts, bool lastTokenOnly = false, IReadOnlyList<long>? rowLengths = null)
    {
        Tensor reference = model.Reference;
        ModelInputValidator.TokenIds(inputIds, _config.VocabSize, reference.device);
        ModelInputValidator.RowForward(rowStarts, inputIds.shape[0], inputIds.shape[1], _config.MaxPositions, cache, _config.NumLayers, _config.NumKeyValueHeads, _config.HeadDim, reference, rowLengths);
        using var scope = NewDisposeScope();
        Tensor hidden = model.ForwardEmbeddingsRows(model.EmbedTokens.forward(inputIds), cache, rowStarts);
        return scope.MoveToOuter(HeadRows(hidden, cache, rowStarts, lastTokenOnly, rowLengths));
    }

    /// <inheritdoc />
    public Tensor ForwardEmbeddingsRows(Tensor inputsEmbeds, KvCache cache, IReadOnlyList<long> rowStarts, bool lastTokenOnly = false, IReadOnlyList<long>? rowLengths = null)
    {
        Tensor reference = model.Reference;
        ModelInputValidator.Embeddings(inputsEmbeds, _config.HiddenSize, reference.dtype, reference.device);
        ModelInputValidator.RowForward(rowStarts, inputsEmbeds.shape[0], inputsEmbeds.shape[1], _config.MaxPositions, cache, _config.NumLayers, _config.NumKeyValueHeads, _config.HeadDim, reference, rowLengths);
        using var scope = NewDisposeScope();
        Tensor hidden = model.ForwardEmbeddingsRows(inputsEmbeds, cache, rowStarts);
        return scope.MoveToOuter(HeadRows(hidden, cache, rowStarts, lastTokenOnly, rowLengths));
    }


    private Tensor HeadRows(Tensor hidden, KvCache cache, IReadOnlyList<long> rowStarts, bool lastTokenOnly, IReadOnlyList<long>? rowLengths)
    {
        for (int i = 0; i < rowStarts.Count; i++) cache.SetRowLength(i, rowStarts[i] + (rowLengths?[i] ?? hidden.shape[1]));
        if (lastTokenOnly) hidden = PaddedRows.LastTokens(hidden, rowLengths);
        return lm_head.forward(hidden);
    }

    // Positions, mask and cache of a forward over [batch, seq] tokens at startPosition, checked before libtorch.
    private void CheckContext(long batch, long seq, Tensor? attentionMask, KvCache? cache, long startPosition, Tensor reference)
    {
        ModelInputValidator.Positions(startPosition, seq, _config.MaxPositions);
        ModelInputValidator.AttentionMask(attentionMask, batch, startPosition + seq, reference.device);
        ModelInputValidator.Cache(cache, batch, startPosition, seq, _config.NumLayers, _config.NumKeyValueHeads, _config.HeadDim, reference.dtype, reference.device);
    }

    private Tensor Head(Tensor hidden, KvCache? cache, long startPosition, bool lastTokenOnly)
    {
        if (cache is not null) cache.Length = startPosition + hidden.shape[1];
        if (lastTokenOnly) hidden = hidden.narrow(1, hidden.shape[1] - 1, 1);
        return lm_head.forward(hidden);
    }
}
