namespace PeftHost.Training.Data;

/// <summary>What the model is trained to do, from its architecture.</summary>
public enum TaskKind
{
    /// <summary>Next-token prediction (a decoder LM).</summary>
    CausalLM,

    /// <summary>One label per sequence (an encoder with a classification head); regression when num_labels is 1.</summary>
    SequenceClassification,
}
