using System.Text.Json.Nodes;
using PeftHost.Abstractions.Layers;
using PeftHost.Engine.Peft;
using PeftHost.Engine.Plugins;
using PeftHost.Formats.Safetensors;
using PeftHost.Models;
using PeftHost.Tests.PeftReference;
using PeftHost.Tests.Support;
using TorchSharp;
using TorchSharp.Modules;
using Xunit;
using static TorchSharp.torch;

namespace PeftHost.Tests.Quantization;

/// <summary>
/// LoRA, DoRA, IA3 and AdaLoRA on the bitsandbytes fixtures' 4-bit and 8-bit bases (QLoRA): against the same
/// adapter on a float32 model whose weights are the dequantized ones (the fixtures' "quantized" logits are that
/// model's, made in the lab), forward and gradients agree; training changes only the adapter; the saved adapter
/// is the file a full-precision base saves, and loads onto the full-precision base.
/// </summary>
public sealed class QuantizedBaseAdapterTests
{
    public static TheoryData<string, string> Cases => new()
    {
        { "llama_nf4_double_quant", "lora" }, { "llama_nf4_double_quant", "dora" }, { "llama_nf4_double_quant", "ia3" }, { "llama_nf4_double_quant", "adalora" },
        { "llama_int8", "lora" }, { "llama_int8", "dora" }, { "llama_int8", "ia3" }, { "llama_int8", "adalora" },
        { "llama_fp4", "lora" },
        { "gpt2_nf4_double_quant", "lora" }, { "gpt2_nf4_double_quant", "dora" },
    };

    /// <summary>The adapter config of a method on a fixture model (shared with the merge tests).</summary>
    internal static JsonObject Config(string model, string method)
    {
        bool gpt2 = model.StartsWith("gpt2", StringComparison.Ordinal);
        JsonArray Targets(params string[] t) => new([.. t.Select(s => JsonValue.Create(s))]);
        JsonArray lowRank = gpt2 ? Targets("c_attn", "c_fc") : Targets("q_proj", "v_proj", "down_proj");
        return method switch
        {
            "lora" => new() { ["peft_type"] = "LORA", ["task_type"] = "CAUSAL_LM", ["r"] = 4, ["lora_alpha"] = 8, ["target_modules"] = lowRank },
            "dora" => new() { ["peft_type"] = "LORA", ["task_type"] = "CAUSAL_LM", ["r"] = 4, ["lora_alpha"] = 8, ["use_dora"] = true, ["target_modules"] = lowRank },
            "ia3" => new()
            {
                ["peft_type"] = "IA3", ["task_type"] = "CAUSAL_LM", ["target_modules"] = Targets("k_proj", "v_proj", "down_proj"),
                ["feedforward_modules"] = Targets("down_proj"),
            },
            "adalora" => new() { ["peft_type"] = "ADALORA", ["task_type"] = "CAUSAL_LM", ["init_r"] = 4, ["target_r"] = 2, ["lora_alpha"] = 8, ["target_modules"] = lowRank },
            _ => throw new ArgumentOutOfRangeException(nameof(method)),
        };
    }

    /// <summary>The float32 base with every quantized weight replaced by its dequantized value (Conv1D's transposed back).</summary>
    private static nn.Module DequantizedTwin(string model, nn.Module quantized)
    {
        nn.Module twin = ModelFactory.Load(Path.Combine(BnbCases.Model(model), "base")).Model;
        var modules = twin.named_modules().ToDictionary(m => m.name, m => m.module);
        using (no_grad())
        {
            foreach ((string path, nn.Module m) in quantized.named_modules())
            {
                if (m is not QuantizedLinear q) continue;
                using Tensor w = q.Dequantize(ScalarType.Float32);
                switch (modules[path])
                {
                    case Linear l: l.weight!.copy_(w); break;
                    case Conv1D c: c.weight.copy_(w.t()); break;
                    default: throw new InvalidOperationException($"{path} is a {modules[path].GetType().Name}");
                }
            }
        }
        return twin;
    }

    private static Tensor Logits(PeftModel peft, Tensor ids)
    {
        using (no_grad()) return peft.Run(() => ((ICausalLM)peft.BaseModel).Forward(ids));
    }

    private static Tensor Disabled(PeftModel peft, Tensor ids)
    {
        using (peft.DisableAdapter()) return Logits(peft, ids);
    }

    // Next-token cross-entropy: a loss whose gradient reaches every adapter through the whole model.
    private static Tensor Loss(PeftModel peft, Tensor ids)
    {
        Tensor logits = peft.Run(() => ((ICausalLM)peft.BaseModel).Forward(ids));
        long vocab = logits.shape[2];
        using Tensor shifted = logits[.., ..^1, ..].reshape(-1, vocab);
        using Tensor targets = ids[.., 1..].reshape(-1);
        Tensor loss = nn.functional.cross_entropy(shifted, targets);
        logits.Dispose();
        return loss;
    }

    private static Dictionary<string, Tensor> Trainable(PeftModel peft) =>
        peft.NamedParameters().Where(p => p.Parameter.requires_grad).ToDictionary(p => p.Name, p => (Tensor)p.Parameter);

    // Everything that is not an adapter parameter: the quantized buffers and the frozen parameters.
    private static Dictionary<string, byte[]> FrozenBytes(nn.Module model)
    {
        var trainable = model.named_parameters().Where(p => p.parameter.requires_grad).Select(p => p.name).ToHashSet();
        var state = new Dictionary<string, byte[]>();
        foreach ((string name, Tensor t) in model.state_dict())
        {
            if (trainable.Contains(name)) continue;
            using Tensor c = t.detach().cpu().contiguous();
            state[name] = c.bytes.ToArray();
        }
        return state;
    }

    private static string[] Layout(string adapterDir)
    {
        using var file = SafetensorsFile.Open(Path.Combine(adapterDir, "adapter_model.safetensors"));
        return [.. file.Tensors.Select(t => $"{t.Name} [{string.Join(", ", t.Shape)}] {t.DType}").Order(StringComparer.Ordinal)];
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Adapter_on_a_quantized_base_is_the_adapter_on_the_dequantized_float_base(string model, string method)
    {
        using var dir = new ScratchFolder();
        using PluginCatalog catalog = PeftCase.Catalog();
        using Tensor ids = BnbCases.InputIds(model);
        JsonObject config = Config(model, method);
        string quantizedFolder = Path.Combine(BnbCases.Model(model), "quantized");
        using nn.Module quantized = ModelFactory.Load(quantizedFolder).Model;
        Assert.Contains(quantized.modules(), m => m is QuantizedLinear);
        using nn.Module twin = DequantizedTwin(model, quantized);
        using (Tensor reference = BnbCases.Logits(model, "quantized"))
        using (no_grad())
        using (Tensor twinLogits = ((ICausalLM)twin).Forward(ids))
            Assert.True(Tensors.MaxAbsDiff(twinLogits, reference) < 1e-4, $"the dequantized twin is not the lab's model: {Tensors.MaxAbsDiff(twinLogits, reference)}");

        using var onQuantized = new PeftModel(quantized, catalog);
        onQuantized.AddAdapter("default", config);
        Dictionary<string, Tensor> adapter = Trainable(onQuantized);
        Assert.NotEmpty(adapter);
        Assert.All(adapter.Values, p => Assert.Equal(ScalarType.Float32, p.dtype));
        manual_seed(11);
        using (no_grad())
            foreach (Tensor p in adapter.Values)
                using (Tensor noise = randn_like(p).mul_(0.2))
                    p.add_(noise); // away from the identity initialisation, so that every factor matters
        string saved = Path.Combine(dir.Path, "adapter");
        onQuantized.SavePretrained(saved);

        using var onTwin = PeftModel.FromPretrained(twin, saved, catalog, isTrainable: true);
        using (Tensor expected = Logits(onTwin, ids))
        using (Tensor actual = Logits(onQuantized, ids))
        using (Tensor plain = Disabled(onTwin, ids))
        {
            Assert.True(Tensors.MaxAbsDiff(expected, plain) > 1e-3, "the adapter changes nothing");
            Assert.True(Tensors.MaxAbsDiff(actual, expected) < 1e-5, $"forward: max |quantized base - dequantized twin| = {Tensors.MaxAbsDiff(actual, expected)}");
        }

        // Gradients: the dequantizing matmul's backward is the float linear's.
        using (Tensor lossQ = Loss(onQuantized, ids)) lossQ.backward();
        using (Tensor lossT = Loss(onTwin, ids)) lossT.backward();
        Dictionary<string, Tensor> twinAdapter = Trainable(onTwin);
        Assert.Equal(adapter.Keys.Order(), twinAdapter.Keys.Order());
        foreach ((string name, Tensor p) in adapter)
        {
            Tensor g = p.grad ?? throw new Xunit.Sdk.XunitException($"{name} got no gradient");
            Tensor gt = twinAdapter[name].grad!;
            double scale = Math.Max(gt.abs().max().item<float>(), 1e-6);
            Assert.True(Tensors.MaxAbsDiff(g, gt) / scale < 1e-4, $"{name}: gradient differs by {Tensors.MaxAbsDiff(g, gt)} (scale {scale})");
        }

        // One optimiser step moves the adapter only: the quantized weights, their scales and the frozen parameters keep their bytes.
        Dictionary<string, byte[]> frozen = FrozenBytes(quantized);
        Dictionary<string, Tensor> before = adapter.ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
        using (var optimizer = optim.AdamW(adapter.Values.Select(p => (Parameter)p), lr: 1e-2)) optimizer.step();
        Assert.All(adapter, kv => Assert.True(Tensors.MaxAbsDiff(kv.Value, before[kv.Key]) > 0, $"{kv.Key} did not move"));
        foreach (Tensor b in before.Values) b.Dispose();
        Dictionary<string, byte[]> frozenAfter = FrozenBytes(quantized);
        Assert.Equal(frozen.Keys.Order(), frozenAfter.Keys.Order());
        Assert.All(frozen, kv => Assert.True(kv.Value.AsSpan().SequenceEqual(frozenAfter[kv.Key]), $"{kv.Key} changed"));

        // The trained adapter, saved and loaded onto a fresh quantized base, gives the logits it gave in training.
        string trained = Path.Combine(dir.Path, "trained");
        onQuantized.SavePretrained(trained);
        using (Tensor during = Logits(onQuantized, ids))
        using (nn.Module fresh = ModelFactory.Load(quantizedFolder).Model)
        using (var reloaded = PeftModel.FromPretrained(fresh, trained, catalog))
        using (Tensor after = Logits(reloaded, ids))
            Assert.Equal(0, Tensors.MaxAbsDiff(after, during));

        // The same PEFT file as on a full-precision base: the tensors' names, shapes and dtypes of a fresh adapter there.
        string fromFloat = Path.Combine(dir.Path, "float");
        using (nn.Module floatBase = ModelFactory.Load(Path.Combine(BnbCases.Model(model), "base")).Model)
        using (var onFloat = new PeftModel(floatBase, catalog))
        {
            onFloat.AddAdapter("default", config);
            onFloat.SavePretrained(fromFloat);
            Assert.Equal(Layout(fromFloat), Layout(trained));
            // ... and the QLoRA adapter loads onto that full-precision base: there it differs only by the base's quantization error.
            using Tensor basePlain = Disabled(onFloat, ids);
            onFloat.LoadAdapter(trained, "qlora");
            onFloat.SetActiveAdapters("qlora");
            using Tensor onFull = Logits(onFloat, ids);
            using Tensor onQ = Logits(onQuantized, ids);
            using Tensor twinPlain = Disabled(onTwin, ids);
            double quantizationError = Tensors.MaxAbsDiff(basePlain, twinPlain);
            Assert.True(Tensors.MaxAbsDiff(onFull, onQ) < 3 * quantizationError + 1e-3, $"{Tensors.MaxAbsDiff(onFull, onQ)} vs the base's quantization error {quantizationError}");
        }
    }
}
