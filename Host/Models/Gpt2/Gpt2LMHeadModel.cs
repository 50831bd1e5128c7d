using PeftHost.Models.Config;
using PeftHost.Models.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftHost.Models.Gpt2;

/// <summary>transformers' <c>GPT2LMHeadModel</c>: <c>transformer</c> and <c>lm_head</c> (tied to <c>transformer.wte</c> by default).</summary>
public sealed class Gpt2LMHeadModel : nn.Module<Tensor, Tensor>, ICausalLM, ITiedWeights
{
    private readonly Gpt2Model transformer;
    private nn.Module<Tensor, Tensor> lm_head;
    private readonly Gpt2Config _config;

    /// <summary>Builds the model with random weights.</summary>
    public Gpt2LMHeadModel(Gpt2Config config) : base(nameof(Gpt2LMHeadModel))
    {
        _config = config;
        transformer = new Gpt2Model(config);
        lm_head = OutputHead.Create(config.HiddenSize, config.VocabSize, config.TieWordEmbeddings ? (Embedding)transformer.Wte : null);
        register_module("transformer", transformer);
        register_module("lm_head", lm_head);
    }

    /// <inheritdoc />
    public ModelConfig Config => _config;

    /// <inheritdoc />
    public IReadOnlyDictionary<string, string> TiedParameters =>
        _config.TieWordEmbeddings ? new Dictionary<string, string> { ["lm_head.weight"] = "transformer.wte.weight" } : new Dictionary<string, string>();

    /// <inheritdoc />
    public KvCache CreateCache(long batch, long capacity)
    {
        Tensor w = transformer.parameters().First();
        return new KvCache(_config.NumLayers, batch, _config.NumHeads, capacity, _config.HiddenSize / _config.NumHeads, w.dtype, w.device);
    }

    /// <summary>Logits [b, s, vocab] for ids [b, s].</summary>
    public override Tensor forward(Tensor inputIds) => Forward(inputIds);

    /// <inheritdoc />
    public Tensor Forward(Tensor inputIds, Tensor? attentionMask = null, KvCache? cache = null, long startPosition = 0, bool lastTokenOnly = false)
    {
        Tensor reference = transformer.Reference;
        ModelInputValidator.TokenIds(inputIds, _config.VocabSize, reference.device);
        CheckContext(inputIds.shape[0], inputIds.shape[1], attentionMask, cache, startPosition, reference);
        using var scope = NewDisposeScope();
        Tensor hidden = transformer.Forward(inputIds, attentionMask, cache, startPosition);
        return scope.MoveToOuter(Head(hidden, cache, startPosition, lastTokenOnly));
    }

    /// <inheritdoc />
    public Tensor EmbedInputs(Tensor inputIds)
    {
        ModelInputValidator.TokenIds(inputIds, _config.VocabSize, transformer.Reference.device);
        return transformer.Wte.forward(inputIds);
    }

    /// <inheritdoc />
    public Tensor ForwardEmbeddings(Tensor inputsEmbeds, Tensor? attentionMask = null, KvCache? cache = null, long startPosition = 0, bool lastTokenOnly = false)
    {
        Tensor reference = transformer.Reference;
        ModelInputValidator.Embeddings(inputsEmbeds, _config.HiddenSize, reference.dtype, reference.device);
        CheckContext(inputsEmbeds.shape[0], inputsEmbeds.shape[1], attentionMask, cache, startPosition, reference);
        using var scope = NewDisposeScope();
        Tensor hidden = transformer.ForwardEmbeddings(inputsEmbeds, attentionMask, cache, startPosition);
        return scope.MoveToOuter(Head(hidden, cache, startPosition, lastTokenOnly));
    }

    /// <inheritdoc />
    public Tensor ForwardRows(Tensor inputIds, KvCache cache, IReadOnlyList<long> rowStarts, bool lastTokenOnly = false, IReadOnlyList<long>? rowLengths = null)
    {
        Tensor reference = transformer.Reference;
        ModelInputValidator.TokenIds(inputIds, _config.VocabSize, reference.device);
        ModelInputValidator.RowForward(rowStarts, inputIds.shape[0], inputIds.shape[1], _config.MaxPositions, cache, _config.NumLayers, _config.NumHeads, _config.HiddenSize / _config.NumHeads, reference, rowLengths);
        using var scope = NewDisposeScope();
        Tensor hidden = transformer.ForwardEmbeddingsRows(transformer.Wte.forward(inputIds), cache, rowStarts);
        return scope.MoveToOuter(HeadRows(hidden, cache, rowStarts, lastTokenOnly, rowLengths));
    }

    /// <inheritdoc />
    public Tensor ForwardEmbeddingsRows(Tensor inputsEmbeds, KvCache cache, IReadOnlyList<long> rowStarts, bool lastTokenOnly = false, IReadOnlyList<long>? rowLengths = null)
    {
        Tensor reference = transformer.Reference;
        ModelInputValidator.Embeddings(inputsEmbeds, _config.HiddenSize, reference.dtype, reference.device);
        ModelInputValidator.RowForward(rowStarts, inputsEmbeds.shape[0], inputsEmbeds.shape[1], _config.MaxPositions, cache, _config.NumLayers, _config.NumHeads, _config.HiddenSize / _config.NumHeads, reference, rowLengths);
        using var scope = NewDisposeScope();
        Tensor hidden = transformer.ForwardEmbeddingsRows(inputsEmbeds, cache, rowStarts);
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
        ModelInputValidator.Cache(cache, batch, startPosition, seq, _config.NumLayers, _config.NumHeads, _config.HiddenSize / _config.NumHeads, reference.dtype, reference.device);
    }

    private Tensor Head(Tensor hidden, KvCache? cache, long startPosition, bool lastTokenOnly)
    {
        if (cache is not null) cache.Length = startPosition + hidden.shape[1];
        if (lastTokenOnly) hidden = hidden.narrow(1, hidden.shape[1] - 1, 1);
        return lm_head.forward(hidden);
    }
}
