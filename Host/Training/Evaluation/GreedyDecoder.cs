using PeftHost.Engine.Peft;
using static TorchSharp.torch;

namespace PeftHost.Training.Evaluation;

/// <summary>
/// Greedy continuation of a prompt through the PEFT model's causal-LM forward (so every method,
/// prompt learning included, acts as in training), for generation-based metrics.
/// </summary>
public static class GreedyDecoder
{
    /// <summary>Up to <paramref name="maxNewTokens"/> ids after <paramref name="prompt"/>, ending before the first stop id.</summary>
    public static IReadOnlyList<int> Continue(PeftModel model, IReadOnlyList<int> prompt, int maxNewTokens, IReadOnlyCollection<int> stopIds, Device device)
    {
        var ids = prompt.Select(i => (long)i).ToList();
        var output = new List<int>();
        using (no_grad())
        {
            for (int step = 0; step < maxNewTokens; step++)
            {
                using var scope = NewDisposeScope();
                Tensor input = tensor(ids.ToArray(), [1, ids.Count]).to(device);
                Tensor logits = model.CausalLMForward(input);
                int next = (int)logits[0, -1].argmax().item<long>();
                if (stopIds.Contains(next)) break;
                output.Add(next);
                ids.Add(next);
            }
        }
        return output;
    }
}
