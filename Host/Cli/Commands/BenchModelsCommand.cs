using System.CommandLine;
using System.Text.Json.Nodes;
using PeftHost.Engine.Inference;

namespace PeftHost.Cli.Commands;

/// <summary>`pefthost bench models [--json]`: forward and generation speed of the small Llama (float32, CPU).</summary>
internal static class BenchModelsCommand
{
    public static Command Create()
    {
        var json = new Option<bool>("--json") { Description = "End with one JSON object on the last line of stdout." };
        var threads = (new Option<int>("--threads") { Description = "Intra-op threads.", DefaultValueFactory = _ => 2 }).AtLeast(1);
        var command = new Command("models", "Small Llama (vocab 8192, hidden 512, 8 layers), float32: forward of 4 x 128 tokens and 32 greedy tokens with the KV cache.") { json, threads };
        command.SetAction(parse =>
        {
            ModelBenchmark.Result r = ModelBenchmark.Run(parse.GetValue(threads));
            Console.WriteLine($"model              llama small, {r.Parameters / 1e6:F1} M parameters, float32, {r.Threads} threads");
            Console.WriteLine($"forward_4x128_s    {r.ForwardSeconds:F4}   ({r.ForwardTokensPerSecond:F0} tokens/s; target < 0.17 s)");
            Console.WriteLine($"generate_tok_s     {r.GenerateTokensPerSecond:F1}   (32 greedy tokens after 16 in {r.GenerateSeconds:F3} s, prefill included; target > 90)");
            if (parse.GetValue(json))
            {
                var o = new JsonObject
                {
                    ["threads"] = r.Threads, ["parameters"] = r.Parameters,
                    ["forward_seconds"] = Math.Round(r.ForwardSeconds, 5), ["forward_tokens_per_second"] = Math.Round(r.ForwardTokensPerSecond, 1),
                    ["generate_seconds"] = Math.Round(r.GenerateSeconds, 5), ["generate_tokens_per_second"] = Math.Round(r.GenerateTokensPerSecond, 1),
                };
                Console.WriteLine(o.ToJsonString());
            }
            return 0;
        });
        return command;
    }
}
