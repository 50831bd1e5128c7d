using PeftHost.Training.Data;
using static TorchSharp.torch;

namespace PeftHost.Training.Loss;

/// <summary>
/// transformers' causal-LM loss: logits in float32, shifted so that position t predicts label t + 1,
/// cross-entropy averaged over the labels that are not -100. Logits that cover a prompt-learning
/// method's virtual tokens ([batch, virtual + seq, vocab]) get labels -100 for them, as PEFT's
/// PeftModelForCausalLM prefixes the labels: a virtual token is never predicted, but the last one predicts
/// the first real token, which counts.
/// </summary>
public static class CausalLMLoss
{
    /// <summary>The mean loss over counted tokens (a 0-d float32 tensor).</summary>
    public static Tensor Compute(Tensor logits, Tensor labels)
    {
        using var scope = NewDisposeScope();
        labels = WithVirtualTokens(labels, logits);
        long seq = labels.shape[1];
        // Position t predicts label t + 1: the labels move left (the last position predicts nothing), so the
        // logits are used as they are, without copying all but their last position.
        Tensor flat = logits.to(ScalarType.Float32).reshape(-1, logits.shape[^1]);
        Tensor shifted = cat([labels.narrow(1, 1, seq - 1), full([labels.shape[0], 1], (long)TrainingExample.IgnoreIndex, dtype: labels.dtype, device: labels.device)], 1).to(logits.device);
        Tensor loss = nn.functional.cross_entropy(flat, shifted.reshape(-1), ignore_index: TrainingExample.IgnoreIndex);
        return scope.MoveToOuter(loss);
    }

    /// <summary>The summed loss and the number of counted tokens (for a token-weighted mean over batches, as eval loss is).</summary>
    public static (double Sum, long Count) SumAndCount(Tensor logits, Tensor labels)
    {
        using var scope = NewDisposeScope();
        labels = WithVirtualTokens(labels, logits);
        long seq = labels.shape[1];
        Tensor shiftLogits = logits.narrow(1, 0, seq - 1).to(ScalarType.Float32);
        Tensor shiftLabels = labels.narrow(1, 1, seq - 1).to(logits.device);
        Tensor sum = nn.functional.cross_entropy(shiftLogits.reshape(-1, shiftLogits.shape[^1]), shiftLabels.reshape(-1),
            ignore_index: TrainingExample.IgnoreIndex, reduction: nn.Reduction.Sum);
        long count = shiftLabels.ne(TrainingExample.IgnoreIndex).sum().item<long>();
        return (sum.item<float>(), count);
    }

    // PEFT's prefix_labels: -100 for each virtual token the logits cover before the sequence.
    private static Tensor WithVirtualTokens(Tensor labels, Tensor logits)
    {
        long extra = logits.shape[1] - labels.shape[1];
        if (extra <= 0) return labels;
        Tensor prefix = full([labels.shape[0], extra], (long)TrainingExample.IgnoreIndex, dtype: labels.dtype, device: labels.device);
        return cat([prefix, labels], 1);
    }
}
