using PeftHost.Formats.Gguf;
using PeftHost.Models;
using PeftHost.Models.Llama;
using PeftHost.Tests.Support;
using PeftHost.Vulkan.Generation;
using PeftHost.Vulkan.Llama;
using PeftHost.Vulkan.Runtime;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace PeftHost.Tests.Vulkan;

/// <summary>
/// The Llama forward on the Vulkan device (from our GGUF export) against the TorchSharp forward of
/// the same Hugging Face folder. f32: within 1e-3. Quantized types: within 1e-3 of the TorchSharp
/// forward of the same weights rounded through the type (quantize, dequantize: the device computes
/// exactly those weights, so only summation order differs), and against the original weights
/// within that rounding's own effect on the TorchSharp logits plus 1e-3 (triangle inequality).
/// </summary>
public sealed class VulkanLlamaForwardTests
{
    private static readonly int[] Ids = [47, 211, 38, 53, 204, 116, 152, 249, 143, 177, 23];

    [Theory]
    [InlineData(GgmlType.F32)]
    [InlineData(GgmlType.F16)]
    [InlineData(GgmlType.Q8_0)]
    [InlineData(GgmlType.Q4_0)]
    public void Whole_model_logits_match_the_torchsharp_forward(GgmlType quant)
    {
        string folder = Conformance.Case("base_llama");
        using VulkanContext context = VulkanModels.CreateContext();
        using LlamaDeviceModel device = VulkanModels.Load(context, folder, quant);
        float[] got = device.ComputeLogits(Ids);

        float[] original = TorchLogits(folder, null);
        float[] rounded = TorchLogits(folder, quant);
        double vsRounded = MaxAbsDiff(got, rounded);
        double quantEffect = MaxAbsDiff(rounded, original);
        double vsOriginal = MaxAbsDiff(got, original);
        Assert.True(vsRounded < 1e-3, $"{quant}: device vs TorchSharp on the {quant}-rounded weights: max |diff| {vsRounded:E3}");
        Assert.True(vsOriginal <= quantEffect + 1e-3, $"{quant}: device vs original {vsOriginal:E3} > rounding effect {quantEffect:E3} + 1e-3");
        if (quant == GgmlType.F32) Assert.True(vsOriginal < 1e-3, $"f32: max |diff| {vsOriginal:E3}");
    }

    [Theory]
    [InlineData(GgmlType.F32)]
    [InlineData(GgmlType.F16)]
    public void Greedy_tokens_are_identical_to_torchsharp(GgmlType quant)
    {
        string folder = Conformance.Case("base_llama");
        using VulkanContext context = VulkanModels.CreateContext();
        using LlamaDeviceModel device = VulkanModels.Load(context, folder, quant);
        int[] prompt = Ids[..6];
        const int steps = 12;
        var deviceTokens = new List<int> { device.Prefill(prompt, 1, 1f, 0f) };
        for (int i = 1; i < steps; i++) deviceTokens.Add(device.DecodeStep(prompt.Length + i - 1, 1, 1f, 0f));

        (_, nn.Module m) = ModelFactory.Load(folder);
        using var model = (LlamaForCausalLM)m;
        var seq = new List<int>(prompt);
        var torchTokens = new List<int>();
        using (no_grad())
        {
            for (int i = 0; i < steps; i++)
            {
                using Tensor ids = tensor(seq.Select(v => (long)v).ToArray(), [1, seq.Count]);
                using Tensor logits = model.Forward(ids);
                using Tensor last = logits[0, -1];
                int next = (int)last.argmax().item<long>();
                torchTokens.Add(next);
                seq.Add(next);
            }
        }
        Assert.Equal(torchTokens, deviceTokens);
    }

    [Fact]
    public void A_merged_lora_gives_the_unmerged_adapter_numbers()
    {
        using VulkanContext context = VulkanModels.CreateContext();
        using LlamaDeviceModel device = VulkanModels.Load(context, Conformance.Case("base_llama"), GgmlType.F32,
            Path.Combine(Conformance.Case("lora_qv"), "adapter"));
        using Tensor expected = Conformance.Reference("lora_qv/logits_adapter.safetensors");
        using Tensor ids = Conformance.Inputs("lora_qv", "input_ids")!;
        for (int b = 0; b < ids.shape[0]; b++)
        {
            int[] row = [.. ids[b].data<long>().ToArray().Select(v => (int)v)];
            float[] got = device.ComputeLogits(row);
            float[] want = expected[b].contiguous().data<float>().ToArray();
            double diff = MaxAbsDiff(got, want);
            Assert.True(diff < 1e-3, $"batch row {b}: max |diff| {diff:E3}");
        }
    }

    [Fact]
    public void Top_k_sampling_on_the_device_picks_among_the_k_best()
    {
        using VulkanContext context = VulkanModels.CreateContext();
        using LlamaDeviceModel device = VulkanModels.Load(context, Conformance.Case("base_llama"), GgmlType.F32);
        int[] prompt = Ids[..4];
        float[] logits = device.ComputeLogits(prompt);
        int vocab = device.Parameters.VocabSize;
        float[] last = logits[((prompt.Length - 1) * vocab)..];
        var top5 = last.Select((v, i) => (v, i)).OrderByDescending(t => t.v).Take(5).Select(t => t.i).ToHashSet();
        var seen = new HashSet<int>();
        var rng = new Random(3);
        for (int i = 0; i < 20; i++) seen.Add(device.Prefill(prompt, 5, 1.5f, rng.NextSingle()));
        Assert.Subset(top5, seen);
        Assert.True(seen.Count > 1, "sampling with temperature 1.5 over 5 candidates should not always pick one token");
        Assert.Equal(top5.OrderByDescending(i => last[i]).First(), device.Prefill(prompt, 1, 1f, 0.99f));
    }

    [Fact]
    public void The_generator_streams_greedy_tokens_and_stops_at_a_stop_id()
    {
        string path = Path.Combine(Path.GetTempPath(), $"pefthost-vk-{Guid.NewGuid():N}.gguf");
        try
        {
            PeftHost.Engine.Export.LlamaGgufExporter.Export(Conformance.Case("base_llama"), [], PluginDirs.Installed, GgmlType.Q8_0, path);
            using ITokenStreamGenerator gen = new VulkanLlamaGenerator(path, contextSize: 64);
            int[] all = [.. gen.Generate(Ids[..5], new TokenSampling { MaxNewTokens = 10 })];
            Assert.Equal(10, all.Length);
            int[] stopped = [.. gen.Generate(Ids[..5], new TokenSampling { MaxNewTokens = 10, StopIds = new HashSet<int> { all[3] } })];
            Assert.Equal(all[..(Array.IndexOf(all, all[3]) + 1)], stopped);
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>TorchSharp logits [ids, vocab] of the folder, with every matrix rounded through <paramref name="quant"/> when given.</summary>
    private static float[] TorchLogits(string folder, GgmlType? quant)
    {
        (_, nn.Module m) = ModelFactory.Load(folder);
        using var model = (LlamaForCausalLM)m;
        using (no_grad())
        {
            if (quant is GgmlType q)
            {
                foreach ((string _, var p) in model.named_parameters())
                {
                    if (p.dim() != 2) continue;
                    float[] values = p.contiguous().data<float>().ToArray();
                    float[] back = GgmlQuantization.Dequantize(q, GgmlQuantization.Quantize(q, values));
                    using Tensor t = tensor(back, p.shape);
                    p.copy_(t);
                }
            }
            using Tensor ids = tensor(Ids.Select(v => (long)v).ToArray(), [1, Ids.Length]);
            using Tensor logits = model.Forward(ids);
            return logits.contiguous().data<float>().ToArray();
        }
    }

    private static double MaxAbsDiff(float[] a, float[] b)
    {
        Assert.Equal(b.Length, a.Length);
        double m = 0;
        for (int i = 0; i < a.Length; i++) m = Math.Max(m, Math.Abs(a[i] - b[i]));
        return m;
    }
}
