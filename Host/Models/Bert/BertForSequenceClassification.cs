using PeftHost.Models.Config;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Models.Bert;

/// <summary>transformers' <c>BertForSequenceClassification</c>: <c>bert</c>, dropout, <c>classifier</c> on the pooled output.</summary>
public sealed class BertForSequenceClassification : nn.Module<Tensor, Tensor>, ISequenceClassifier
{
    private readonly BertModel bert;
    private nn.Module<Tensor, Tensor> classifier;
    private readonly double _dropout;

    /// <summary>Builds the model with random weights.</summary>
    public BertForSequenceClassification(BertConfig config) : base(nameof(BertForSequenceClassification))
    {
        Config = config;
        bert = new BertModel(config);
        classifier = nn.Linear(config.HiddenSize, config.NumLabels);
        _dropout = config.ClassifierDropout ?? config.HiddenDropout;
        register_module("bert", bert);
        register_module("classifier", classifier);
    }

    /// <inheritdoc />
    public ModelConfig Config { get; }

    /// <summary>Logits [b, labels] for ids [b, s].</summary>
    public override Tensor forward(Tensor inputIds) => Forward(inputIds);

    /// <inheritdoc />
    public Tensor Forward(Tensor inputIds, Tensor? attentionMask = null, Tensor? tokenTypeIds = null)
    {
        using var scope = NewDisposeScope();
        (_, Tensor pooled) = bert.Forward(inputIds, attentionMask, tokenTypeIds);
        return scope.MoveToOuter(classifier.forward(nn.functional.dropout(pooled, _dropout, training)));
    }
}
