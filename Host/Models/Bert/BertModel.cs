using PeftHost.Models.Config;
using PeftHost.Models.Layers;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Models.Bert;

/// <summary>transformers' <c>BertModel</c>: embeddings, encoder, pooler (state dict keys without the <c>bert.</c> prefix).</summary>
public sealed class BertModel : nn.Module<Tensor, Tensor>
{
    private readonly BertEmbeddings embeddings;
    private readonly BertEncoder encoder;
    private readonly BertPooler pooler;

    /// <summary>Builds the model with random weights.</summary>
    public BertModel(BertConfig config) : base(nameof(BertModel))
    {
        Config = config;
        embeddings = new BertEmbeddings(config);
        encoder = new BertEncoder(config);
        pooler = new BertPooler(config);
        register_module("embeddings", embeddings);
        register_module("encoder", encoder);
        register_module("pooler", pooler);
    }

    /// <summary>The config.</summary>
    public BertConfig Config { get; }

    /// <summary>The last hidden state [b, s, hidden] for ids [b, s].</summary>
    public override Tensor forward(Tensor inputIds) => Forward(inputIds, null, null).LastHidden;

    /// <summary>Last hidden state [b, s, hidden] and pooled output [b, hidden]; the mask [b, s] marks padding with 0.</summary>
    /// <exception cref="ModelInputException">An input is out of range or of the wrong shape, dtype or device (checked before libtorch).</exception>
    public (Tensor LastHidden, Tensor Pooled) Forward(Tensor inputIds, Tensor? attentionMask, Tensor? tokenTypeIds)
    {
        Device device = embeddings.Reference.device;
        ModelInputValidator.TokenIds(inputIds, Config.VocabSize, device);
        ModelInputValidator.Positions(0, inputIds.shape[1], Config.MaxPositions, "inputIds");
        ModelInputValidator.AttentionMask(attentionMask, inputIds.shape[0], inputIds.shape[1], device);
        ModelInputValidator.TokenTypes(tokenTypeIds, inputIds.shape[0], inputIds.shape[1], Config.TypeVocabSize, device);
        using var scope = NewDisposeScope();
        Tensor hidden = embeddings.Forward(inputIds, tokenTypeIds);
        Tensor? mask = attentionMask is null ? null
            : AttentionMasks.Build(1, inputIds.shape[1], 0, causal: false, null, attentionMask, hidden.dtype, hidden.device);
        Tensor last = encoder.Forward(hidden, mask);
        Tensor pooled = pooler.forward(last);
        scope.MoveToOuter(last, pooled);
        return (last, pooled);
    }
}
