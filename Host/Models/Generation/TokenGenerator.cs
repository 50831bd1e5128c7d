using PeftHost.Models.Layers;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Models.Generation;

/// <summary>
/// Token-by-token generation for one sequence: the prompt runs once (prefill), then each new
/// token runs alone against the preallocated KV cache. Tokens are yielded as they come.
/// </summary>
public static class TokenGenerator
{
    /// <summary>Generates up to <see cref="GenerationOptions.MaxNewTokens"/> token ids after <paramref name="prompt"/>, streaming them.</summary>
    /// <exception cref="ModelInputException">The prompt or the options are out of range (checked before the first token).</exception>
    /// <exception cref="NotFiniteNumberException">A step's logits hold NaN or infinity.</exception>
    public static IEnumerable<long> Generate(ICausalLM model, IReadOnlyList<long> prompt, GenerationOptions options)
    {
        ModelInputValidator.Generation(prompt, options, model.Config);
        if (options.MaxNewTokens <= 0) yield break;
        var module = (nn.Module)model;
        Device device = module.parameters().First().device;
        long capacity = prompt.Count + options.MaxNewTokens;
        using KvCache? cache = options.UseCache ? model.CreateCache(1, capacity) : null;
        using torch.Generator? rng = options.DoSample ? (options.Seed is long s ? new torch.Generator((ulong)s, device) : new torch.Generator((ulong)Random.Shared.NextInt64(), device)) : null;
        var sequence = new List<long>(prompt);
        // The one-token input is allocated once and refilled every step.
        using Tensor step = torch.zeros(1, 1, dtype: ScalarType.Int64, device: device);
        for (int i = 0; i < options.MaxNewTokens; i++)
        {
            long next;
            using (torch.inference_mode())
            using (NewDisposeScope())
            {
                Tensor logits;
                if (cache is null)
                {
                    Tensor ids = torch.tensor(sequence.ToArray(), dtype: ScalarType.Int64, device: device).unsqueeze(0);
                    logits = model.Forward(ids, lastTokenOnly: true);
                }
                else if (i == 0)
                {
                    Tensor ids = torch.tensor(sequence.ToArray(), dtype: ScalarType.Int64, device: device).unsqueeze(0);
                    logits = model.Forward(ids, cache: cache, startPosition: 0, lastTokenOnly: true);
                }
                else
                {
                    step.fill_(sequence[^1]);
                    logits = model.Forward(step, cache: cache, startPosition: sequence.Count - 1, lastTokenOnly: true);
                }
                Tensor scores = logits.reshape(-1).to(ScalarType.Float32);
                // Sampling NaN would fail inside libtorch (multinomial) or pick garbage (argmax): stop with the reason.
                if (!scores.isfinite().all().item<bool>())
                    throw new NotFiniteNumberException($"The model's logits for new token {i + 1} hold NaN or infinity: its weights or an adapter's are broken (or the dtype overflowed).");
                next = Choose(scores, sequence, options, rng);
            }
            sequence.Add(next);
            yield return next;
            if (options.StopTokenIds.Contains(next)) yield break;
        }
    }

    /// <summary>Generates with a callback per token; returns all generated ids.</summary>
    public static IReadOnlyList<long> Generate(ICausalLM model, IReadOnlyList<long> prompt, GenerationOptions options, Action<long> onToken)
    {
        var result = new List<long>();
        foreach (long t in Generate(model, prompt, options))
        {
            result.Add(t);
            onToken(t);
        }
        return result;
    }

    /// <summary>Applies the logits processors in transformers' order and picks the next token.</summary>
    public static long Choose(Tensor logits, IReadOnlyList<long> sequence, GenerationOptions options, torch.Generator? rng)
    {
        using var scope = NewDisposeScope();
        Tensor scores = logits;
        if (options.RepetitionPenalty != 1.0)
        {
            Tensor seen = torch.tensor(sequence.Distinct().ToArray(), dtype: ScalarType.Int64, device: scores.device);
            Tensor values = scores.gather(0, seen);
            values = torch.where(values < 0, values * options.RepetitionPenalty, values / options.RepetitionPenalty);
            scores = scores.clone().scatter_(0, seen, values);
        }
        if (!options.DoSample) return scores.argmax().item<long>();

        if (options.Temperature != 1.0) scores = scores / options.Temperature;
        if (options.TopK > 0 && options.TopK < scores.shape[0])
        {
            Tensor kth = scores.topk(options.TopK).values.min();
            scores = scores.masked_fill(scores < kth, double.NegativeInfinity);
        }
        if (options.TopP < 1.0)
        {
            // Sorted ascending: drop the low tail whose cumulative probability is ≤ 1 - top_p, keep at least one.
            (Tensor sorted, Tensor indices) = scores.sort(descending: false);
            Tensor cumulative = sorted.softmax(-1).cumsum(-1);
            Tensor remove = cumulative <= (1 - options.TopP);
            remove[-1] = torch.tensor(false);
            Tensor removeUnsorted = torch.zeros_like(remove).scatter_(0, indices, remove);
            scores = scores.masked_fill(removeUnsorted, double.NegativeInfinity);
        }
        Tensor probs = scores.softmax(-1);
        return probs.multinomial(1, generator: rng).item<long>();
    }
}
