using System.Diagnostics;
using PeftHost.Models;
using PeftHost.Models.Generation;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Engine.Inference;

/// <summary>
/// The models benchmark: the small Llama preset in float32 on the CPU: one forward of a batch of
/// 4 x 128 tokens, and 32 greedy tokens after a 16-token prompt with the KV cache.
/// </summary>
public static class ModelBenchmark
{
    /// <summary>Figures of one run (medians of the timed repetitions).</summary>
    public sealed record Result(int Threads, double ForwardSeconds, double ForwardTokensPerSecond, double GenerateSeconds, double GenerateTokensPerSecond, long Parameters);

    /// <summary>Runs the benchmark with <paramref name="threads"/> intra-op threads.</summary>
    public static Result Run(int threads = 2, int repeats = 5)
    {
        torch.set_num_threads(threads);
        (_, nn.Module module) = ModelPresets.Create("llama", "small", seed: 0);
        using (module)
        {
            var model = (ICausalLM)module;
            long parameters = module.parameters().Sum(p => p.numel());
            long vocab = model.Config.VocabSize;

            using var gen = new torch.Generator(1234);
            using Tensor batch = torch.randint(0, vocab, [4, 128], dtype: ScalarType.Int64, generator: gen);
            double forward = Median(repeats, () =>
            {
                using (torch.inference_mode())
                using (NewDisposeScope()) model.Forward(batch);
            });

            long[] prompt = [.. Enumerable.Range(0, 16).Select(i => (long)(i * 37 % vocab))];
            var options = new GenerationOptions { MaxNewTokens = 32 };
            int produced = 0;
            double generate = Median(repeats, () =>
            {
                produced = 0;
                foreach (long _ in TokenGenerator.Generate(model, prompt, options)) produced++;
            });
            if (produced != 32) throw new InvalidOperationException($"Generation produced {produced} tokens instead of 32.");
            return new Result(threads, forward, 4 * 128 / forward, generate, 32 / generate, parameters);
        }
    }

    // One untimed warm-up, then the median of the timed runs.
    private static double Median(int repeats, Action action)
    {
        action();
        var times = new List<double>();
        for (int i = 0; i < repeats; i++)
        {
            long start = Stopwatch.GetTimestamp();
            action();
            times.Add(Stopwatch.GetElapsedTime(start).TotalSeconds);
        }
        times.Sort();
        return times[times.Count / 2];
    }
}
