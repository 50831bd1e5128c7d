using PeftHost.Models.Config;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftHost.Models.Bert;

/// <summary>word + position + token type embeddings, LayerNorm, dropout.</summary>
public sealed class BertEmbeddings : nn.Module
{
    private nn.Module<Tensor, Tensor> word_embeddings;
    private nn.Module<Tensor, Tensor> position_embeddings;
    private nn.Module<Tensor, Tensor> token_type_embeddings;
    private nn.Module<Tensor, Tensor> LayerNorm;
    private readonly double _dropout;

    /// <summary>Embeddings per config.</summary>
    public BertEmbeddings(BertConfig c) : base(nameof(BertEmbeddings))
    {
        word_embeddings = nn.Embedding(c.VocabSize, c.HiddenSize, padding_idx: c.PadTokenId);
        position_embeddings = nn.Embedding(c.MaxPositions, c.HiddenSize);
        token_type_embeddings = nn.Embedding(c.TypeVocabSize, c.HiddenSize);
        LayerNorm = nn.LayerNorm(c.HiddenSize, c.LayerNormEps);
        _dropout = c.HiddenDropout;
        register_module("word_embeddings", word_embeddings);
        register_module("position_embeddings", position_embeddings);
        register_module("token_type_embeddings", token_type_embeddings);
        register_module("LayerNorm", LayerNorm);
    }

    /// <summary>The LayerNorm's weight (the base's, when a tuner wraps it): the model's dtype and device.</summary>
    internal Tensor Reference => LayerNorm.parameters().First();

    /// <summary>[b, s] ids (and token types, default 0) → [b, s, hidden].</summary>
    public Tensor Forward(Tensor inputIds, Tensor? tokenTypeIds)
    {
        using var scope = NewDisposeScope();
        long s = inputIds.shape[1];
        Tensor positions = torch.arange(0, s, dtype: ScalarType.Int64, device: inputIds.device).unsqueeze(0);
        Tensor types = tokenTypeIds ?? torch.zeros_like(inputIds);
        Tensor e = word_embeddings.forward(inputIds) + token_type_embeddings.forward(types) + position_embeddings.forward(positions);
        e = nn.functional.dropout(LayerNorm.forward(e), _dropout, training);
        return scope.MoveToOuter(e);
    }
}
