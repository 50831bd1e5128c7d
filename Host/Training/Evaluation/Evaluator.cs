using PeftHost.Engine.Peft;
using PeftHost.Training.Data;
using PeftHost.Training.Loop;
using PeftHost.Training.Loss;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Training.Evaluation;

/// <summary>
/// Loss-based evaluation in eval mode without autograd: eval_loss as transformers' evaluation loop
/// reports it (the mean over rows of their batch's mean loss), eval_perplexity = exp(eval_loss),
/// and eval_accuracy (classification: argmax = label; causal LM: next-token accuracy over counted tokens).
/// </summary>
public static class Evaluator
{
    /// <summary>The metrics of <paramref name="data"/>, keys prefixed with "eval_".</summary>
    public static Dictionary<string, double> Evaluate(PeftModel model, TrainingDataset data, TaskKind task, int batchSize, int padTokenId, Device device, CancellationToken cancel = default)
    {
        bool wasTraining = model.BaseModel.training;
        model.BaseModel.eval();
        try
        {
            double lossSum = 0;
            long rows = 0, correct = 0, counted = 0;
            using (no_grad())
            {
                for (int start = 0; start < data.Examples.Count; start += batchSize)
                {
                    cancel.ThrowIfCancellationRequested();
                    var examples = data.Examples.Skip(start).Take(batchSize).ToList();
                    using var scope = NewDisposeScope();
                    using Batch cpu = DataCollator.Collate(examples, task, padTokenId);
                    Batch batch = cpu.To(device);
                    Tensor logits = TaskForward.Logits(model, batch, task);
                    double loss = TaskForward.Loss(logits, batch, task).item<float>();
                    lossSum += loss * examples.Count;
                    rows += examples.Count;
                    (long c, long n) = Correct(logits, batch, task);
                    correct += c;
                    counted += n;
                }
            }
            double evalLoss = lossSum / rows;
            var metrics = new Dictionary<string, double> { ["eval_loss"] = evalLoss };
            if (task == TaskKind.CausalLM) metrics["eval_perplexity"] = Math.Exp(evalLoss);
            if (counted > 0) metrics["eval_accuracy"] = correct / (double)counted;
            return metrics;
        }
        finally
        {
            model.BaseModel.train(wasTraining);
        }
    }

    private static (long Correct, long Counted) Correct(Tensor logits, Batch batch, TaskKind task)
    {
        if (task == TaskKind.SequenceClassification)
        {
            if (logits.shape[^1] == 1) return (0, 0); // regression has no accuracy
            Tensor predicted = logits.argmax(-1);
            return (predicted.eq(batch.Labels.to(predicted.device)).sum().item<long>(), batch.Labels.shape[0]);
        }
        long seq = batch.Labels.shape[1];
        if (logits.shape[1] > seq) logits = logits.narrow(1, logits.shape[1] - seq, seq);
        Tensor next = logits.narrow(1, 0, seq - 1).argmax(-1);
        Tensor labels = batch.Labels.narrow(1, 1, seq - 1).to(next.device);
        Tensor countedMask = labels.ne(TrainingExample.IgnoreIndex);
        return (next.eq(labels).logical_and(countedMask).sum().item<long>(), countedMask.sum().item<long>());
    }
}
