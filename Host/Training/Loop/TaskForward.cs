using PeftHost.Engine.Peft;
using PeftHost.Models;
using PeftHost.Training.Data;
using PeftHost.Training.Loss;
using static TorchSharp.torch;

namespace PeftHost.Training.Loop;

/// <summary>The forward pass and loss of one batch for the task, through the PEFT model (every tuner acts in it).</summary>
public static class TaskForward
{
    /// <summary>Logits of a batch: [batch, seq (+ virtual tokens), vocab] for causal LMs, [batch, num_labels] for classifiers.</summary>
    public static Tensor Logits(PeftModel model, Batch batch, TaskKind task)
    {
        if (task == TaskKind.SequenceClassification)
        {
            var classifier = model.BaseModel as ISequenceClassifier
                ?? throw new InvalidOperationException($"The base model {model.BaseModel.GetType().Name} is not a sequence classifier.");
            return model.Run(() => classifier.Forward(batch.InputIds, batch.AttentionMask));
        }
        if (batch.SequenceIds is not null)
        {
            var packed = model.BaseModel as IPackedCausalLM
                ?? throw new NotSupportedException($"packing needs a model that runs packed rows (Llama, Mistral, Qwen2); {model.BaseModel.GetType().Name} does not.");
            return model.Run(() => packed.ForwardPacked(batch.InputIds, batch.PositionIds!, batch.SequenceIds));
        }
        return model.CausalLMForward(batch.InputIds, batch.AttentionMask);
    }

    /// <summary>The batch's mean loss (0-d float32).</summary>
    public static Tensor Loss(Tensor logits, Batch batch, TaskKind task) =>
        task == TaskKind.CausalLM ? CausalLMLoss.Compute(logits, batch.Labels) : SequenceClassificationLoss.Compute(logits, batch.Labels);
}
