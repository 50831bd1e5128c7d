namespace PeftHost.Models.Config;

/// <summary>BERT (<c>BertModel</c>, <c>BertForSequenceClassification</c>).</summary>
public sealed record BertConfig : ModelConfig
{
    /// <summary>Feed-forward inner size.</summary>
    public required int IntermediateSize { get; init; }

    /// <summary>Token type vocabulary.</summary>
    public int TypeVocabSize { get; init; } = 2;

    /// <summary>LayerNorm epsilon.</summary>
    public double LayerNormEps { get; init; } = 1e-12;

    /// <summary>Dropout after embeddings and sublayers.</summary>
    public double HiddenDropout { get; init; } = 0.1;

    /// <summary>Dropout on attention probabilities.</summary>
    public double AttentionDropout { get; init; } = 0.1;

    /// <summary>Classifier dropout (null: the hidden dropout).</summary>
    public double? ClassifierDropout { get; init; }

    /// <summary>Activation of the intermediate layer ("gelu", "gelu_new", "relu").</summary>
    public string HiddenAct { get; init; } = "gelu";

    /// <summary>Number of labels of the classification head.</summary>
    public int NumLabels { get; init; } = 2;

    /// <summary>Padding token id.</summary>
    public int PadTokenId { get; init; }
}
