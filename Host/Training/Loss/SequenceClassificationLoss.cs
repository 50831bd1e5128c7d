using static TorchSharp.torch;

namespace PeftHost.Training.Loss;

/// <summary>
/// transformers' sequence-classification loss: cross-entropy over num_labels classes, or mean squared
/// error of the single logit when num_labels is 1 (regression).
/// </summary>
public static class SequenceClassificationLoss
{
    /// <summary>The mean loss of a batch (logits [batch, num_labels]; labels [batch] class indices or float targets).</summary>
    public static Tensor Compute(Tensor logits, Tensor labels)
    {
        using var scope = NewDisposeScope();
        Tensor x = logits.to(ScalarType.Float32);
        Tensor y = labels.to(logits.device);
        Tensor loss = x.shape[^1] == 1
            ? nn.functional.mse_loss(x.squeeze(-1), y.to(ScalarType.Float32))
            : nn.functional.cross_entropy(x, y.to(ScalarType.Int64));
        return scope.MoveToOuter(loss);
    }
}
