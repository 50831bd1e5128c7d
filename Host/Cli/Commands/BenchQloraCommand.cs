using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using PeftHost.Engine.Quantization;

namespace PeftHost.Cli.Commands;

/// <summary>
/// `pefthost bench qlora [--json]`: the 4-bit base of QLoRA (bits per weight, memory, logits error, forward time),
/// then the same LoRA adapter on the float32 and the NF4 + double quantization base (forward and training-step time).
/// </summary>
internal static class BenchQloraCommand
{
    public static Command Create(Option<string> pluginsOption)
    {
        var json = new Option<bool>("--json") { Description = "End with one JSON object on the last line of stdout." };
        var threads = (new Option<int>("--threads") { Description = "Intra-op threads.", DefaultValueFactory = _ => 2 }).AtLeast(1);
        var rounds = (new Option<int>("--rounds") { Description = "Interleaved forward rounds (medians are reported).", DefaultValueFactory = _ => 5 }).AtLeast(1);
        var sizes = new Option<string>("--sizes") { Description = "Llama presets, comma-separated: tiny, small (hidden 512, 8 layers), medium (160M).", DefaultValueFactory = _ => "small,medium" };
        var command = new Command("qlora", "Llama presets in float32, NF4 and NF4 with double quantization (bitsandbytes' formats): bits per quantized weight, bytes of the base, logits error against float32, forward 4 x 128; the same LoRA adapter on the float32 and NF4 + double quantization bases (forward and training-step time, QLoRA over LoRA).")
        {
            json, threads, rounds, sizes,
        };
        command.SetAction(parse =>
        {
            string[] chosen = parse.GetValue(sizes)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            IReadOnlyList<QloraBenchmark.ModelResult> results = QloraBenchmark.Run(chosen, parse.GetValue(threads), parse.GetValue(rounds));
            IReadOnlyList<QloraAdapterBenchmark.Result> adapters = QloraAdapterBenchmark.Run(chosen, parse.GetValue(pluginsOption)!, parse.GetValue(threads), parse.GetValue(rounds));
            CultureInfo c = CultureInfo.InvariantCulture;
            var all = new JsonArray();
            foreach ((QloraBenchmark.ModelResult r, QloraAdapterBenchmark.Result a) in results.Zip(adapters))
            {
                Console.WriteLine(string.Create(c, $"model              {r.Model}: {r.Parameters / 1e6:F1}M parameters, {r.QuantizedWeights / 1e6:F1}M in quantized linears; float32 compute, {parse.GetValue(threads)} threads, batch 4 x 128"));
                Console.WriteLine(string.Create(c, $"bits_per_weight    nf4 {r.Nf4Bits:F3} (target <= 4.5), nf4 + double quant {r.Nf4DoubleQuantBits:F3} (target <= 4.13)"));
                Console.WriteLine(string.Create(c, $"base_bytes         f32 {Mib(r.Float32Bytes)} MiB, nf4 {Mib(r.Nf4Bytes)} MiB ({(double)r.Nf4Bytes / r.Float32Bytes:P1}), nf4 + dq {Mib(r.Nf4DoubleQuantBytes)} MiB ({(double)r.Nf4DoubleQuantBytes / r.Float32Bytes:P1})"));
                Console.WriteLine(string.Create(c, $"embeddings_head    {Mib(r.EmbeddingAndHeadBytes)} MiB float32 in all three: {r.EmbeddingShareOfFloat32:P1} of the f32 base, {r.EmbeddingShareOfNf4DoubleQuant:P1} of the nf4 + dq base"));
                Console.WriteLine(string.Create(c, $"logits_error       nf4 max {r.Nf4LogitsMaxError:F4} mean {r.Nf4LogitsMeanError:F5}; nf4 + dq max {r.Nf4DoubleQuantLogitsMaxError:F4} mean {r.Nf4DoubleQuantLogitsMeanError:F5} (f32 logits std {r.LogitsStd:F4})"));
                Console.WriteLine(string.Create(c, $"forward_s          f32 {r.Float32Forward.Seconds:F4}, nf4 {r.Nf4Forward.Seconds:F4} ({r.Nf4ForwardRatio:F2}x), nf4 + dq {r.Nf4DoubleQuantForward.Seconds:F4} ({r.Nf4DoubleQuantForwardRatio:F2}x)"));
                Console.WriteLine(string.Create(c, $"forward_cpu_s      f32 {r.Float32Forward.CpuSeconds:F4}, nf4 {r.Nf4Forward.CpuSeconds:F4} ({r.Nf4ForwardCpuRatio:F2}x), nf4 + dq {r.Nf4DoubleQuantForward.CpuSeconds:F4} ({r.Nf4DoubleQuantForwardCpuRatio:F2}x)"));
                Console.WriteLine(string.Create(c, $"adapter            LoRA r 16 on q, k, v, o ({a.TrainableParameters / 1e6:F2}M trainable); float32 base (LoRA) vs nf4 + dq base (QLoRA), batch {a.Batch} x {a.Sequence}"));
                Console.WriteLine(string.Create(c, $"adapter_forward_s  lora {a.LoraForward.Seconds:F4}, qlora {a.QloraForward.Seconds:F4} ({a.ForwardRatio:F2}x, target <= 1.5; cpu {a.ForwardCpuRatio:F2}x)"));
                Console.WriteLine(string.Create(c, $"train_step_s       lora {a.LoraStep.Seconds:F4}, qlora {a.QloraStep.Seconds:F4} ({a.StepRatio:F2}x, target <= 1.5; cpu {a.StepCpuRatio:F2}x)"));
                all.Add(new JsonObject
                {
                    ["model"] = r.Model, ["parameters"] = r.Parameters, ["quantized_weights"] = r.QuantizedWeights,
                    ["nf4_bits_per_weight"] = Math.Round(r.Nf4Bits, 4), ["nf4_dq_bits_per_weight"] = Math.Round(r.Nf4DoubleQuantBits, 4),
                    ["f32_bytes"] = r.Float32Bytes, ["nf4_bytes"] = r.Nf4Bytes, ["nf4_dq_bytes"] = r.Nf4DoubleQuantBytes,
                    ["embedding_head_bytes"] = r.EmbeddingAndHeadBytes, ["embedding_head_share_f32"] = Math.Round(r.EmbeddingShareOfFloat32, 4),
                    ["embedding_head_share_nf4_dq"] = Math.Round(r.EmbeddingShareOfNf4DoubleQuant, 4),
                    ["nf4_logits_max_error"] = Math.Round(r.Nf4LogitsMaxError, 6), ["nf4_logits_mean_error"] = Math.Round(r.Nf4LogitsMeanError, 6),
                    ["nf4_dq_logits_max_error"] = Math.Round(r.Nf4DoubleQuantLogitsMaxError, 6), ["nf4_dq_logits_mean_error"] = Math.Round(r.Nf4DoubleQuantLogitsMeanError, 6),
                    ["f32_logits_std"] = Math.Round(r.LogitsStd, 6),
                    ["f32_forward_seconds"] = Math.Round(r.Float32Forward.Seconds, 5), ["nf4_forward_seconds"] = Math.Round(r.Nf4Forward.Seconds, 5),
                    ["nf4_dq_forward_seconds"] = Math.Round(r.Nf4DoubleQuantForward.Seconds, 5),
                    ["nf4_forward_ratio"] = Math.Round(r.Nf4ForwardRatio, 4), ["nf4_dq_forward_ratio"] = Math.Round(r.Nf4DoubleQuantForwardRatio, 4),
                    ["nf4_forward_cpu_ratio"] = Math.Round(r.Nf4ForwardCpuRatio, 4), ["nf4_dq_forward_cpu_ratio"] = Math.Round(r.Nf4DoubleQuantForwardCpuRatio, 4),
                    ["adapter_trainable_parameters"] = a.TrainableParameters,
                    ["lora_forward_seconds"] = Math.Round(a.LoraForward.Seconds, 5), ["qlora_forward_seconds"] = Math.Round(a.QloraForward.Seconds, 5),
                    ["qlora_forward_ratio"] = Math.Round(a.ForwardRatio, 4), ["qlora_forward_cpu_ratio"] = Math.Round(a.ForwardCpuRatio, 4),
                    ["lora_step_seconds"] = Math.Round(a.LoraStep.Seconds, 5), ["qlora_step_seconds"] = Math.Round(a.QloraStep.Seconds, 5),
                    ["qlora_step_ratio"] = Math.Round(a.StepRatio, 4), ["qlora_step_cpu_ratio"] = Math.Round(a.StepCpuRatio, 4),
                });
            }
            if (parse.GetValue(json)) Console.WriteLine(new JsonObject { ["threads"] = parse.GetValue(threads), ["models"] = all }.ToJsonString());
            return 0;
        });
        return command;
    }

    private static string Mib(long bytes) => (bytes / 1048576.0).ToString("F1", CultureInfo.InvariantCulture);
}
