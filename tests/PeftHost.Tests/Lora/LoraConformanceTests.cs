using System.Buffers.Binary;
using System.Text.Json.Nodes;
using PeftHost.Abstractions.State;
using PeftHost.Abstractions.Tuning;
using PeftHost.Tests.Support;
using TorchSharp;
using TorchSharp.Modules;
using Xunit;
using static PeftHost.Tests.Lora.LoraHarness;
using static TorchSharp.torch;

namespace PeftHost.Tests.Lora;

/// <summary>The adapter real PEFT 0.13.2 wrote (tests/fixtures/conformance/lora_qv): its keys and shapes are ours.</summary>
public class LoraConformanceTests
{
    private const string Prefix = "base_model.model.";

    private static string AdapterDir => Conformance.Case(Path.Combine("lora_qv", "adapter"));

    [Fact]
    public void Peft_tensors_import_under_our_keys_and_export_back_unchanged()
    {
        JsonObject config = JsonNode.Parse(File.ReadAllText(Path.Combine(AdapterDir, "adapter_config.json")))!.AsObject();
        Dictionary<string, Tensor> tensors = ReadSafetensors(Path.Combine(AdapterDir, "adapter_model.safetensors"));
        Assert.All(tensors.Keys, k => Assert.StartsWith(Prefix, k));
        var state = new AdapterState("default", config, tensors.ToDictionary(t => t.Key[Prefix.Length..], t => t.Value));

        // A stand-in with the same module paths and shapes as the Llama the adapter was made for.
        int layers = state.Tensors.Keys.Select(k => int.Parse(k.Split('.')[2])).Max() + 1;
        long hidden = state.Tensors["model.layers.0.self_attn.q_proj.lora_A.weight"].shape[1];
        long vOut = state.Tensors["model.layers.0.self_attn.v_proj.lora_B.weight"].shape[0];
        var model = new LlamaPaths(layers, hidden, vOut);
        ITunerModel tuner = Attach(model);
        tuner.ImportAdapter(state);

        using AdapterState exported = tuner.ExportAdapter("default");
        Assert.Equal(state.Tensors.Keys.Order(StringComparer.Ordinal), exported.Tensors.Keys.Order(StringComparer.Ordinal));
        foreach ((string key, Tensor value) in state.Tensors)
            Assert.Equal(0.0, Diff(exported.Tensors[key], value));

        // The forward is base + x Aᵀ Bᵀ · 16/8 on every adapted projection.
        var p = Params(model);
        using var x = torch.randn(2, hidden);
        using var expected = x.matmul(p["model.layers.0.self_attn.q_proj.base_layer.weight"].t()) + p["model.layers.0.self_attn.q_proj.base_layer.bias"]
            + x.matmul(state.Tensors["model.layers.0.self_attn.q_proj.lora_A.weight"].t()).matmul(state.Tensors["model.layers.0.self_attn.q_proj.lora_B.weight"].t()) * 2.0;
        using var actual = ((nn.Module<Tensor, Tensor>)model.Layer0Q).forward(x);
        Assert.True(Diff(actual, expected) < 1e-5);
        tuner.Dispose();
        state.Dispose();
    }

    // safetensors: an 8-byte little-endian header length, a JSON header, then raw little-endian data.
    private static Dictionary<string, Tensor> ReadSafetensors(string path)
    {
        byte[] bytes = File.ReadAllBytes(path);
        int headerLength = checked((int)BinaryPrimitives.ReadUInt64LittleEndian(bytes));
        JsonObject header = JsonNode.Parse(bytes.AsSpan(8, headerLength))!.AsObject();
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach ((string key, JsonNode? entry) in header)
        {
            if (key == "__metadata__") continue;
            Assert.Equal("F32", entry!["dtype"]!.GetValue<string>());
            long[] shape = entry["shape"]!.AsArray().Select(n => n!.GetValue<long>()).ToArray();
            int start = entry["data_offsets"]![0]!.GetValue<int>(), end = entry["data_offsets"]![1]!.GetValue<int>();
            float[] data = new float[(end - start) / 4];
            Buffer.BlockCopy(bytes, 8 + headerLength + start, data, 0, end - start);
            result[key] = torch.tensor(data).reshape(shape);
        }
        return result;
    }

    /// <summary>model.layers.N.self_attn.{q_proj, v_proj}, as in transformers' Llama.</summary>
    private sealed class LlamaPaths : nn.Module<Tensor, Tensor>
    {
        private readonly Inner model;

        public LlamaPaths(int layers, long hidden, long vOut) : base(nameof(LlamaPaths))
        {
            model = new Inner(layers, hidden, vOut);
            RegisterComponents();
        }

        public nn.Module Layer0Q => model.named_modules().First(m => m.name == "layers.0.self_attn.q_proj").module;

        public override Tensor forward(Tensor x) => model.forward(x);

        private sealed class Inner : nn.Module<Tensor, Tensor>
        {
            private readonly ModuleList<Block> layers = new();

            public Inner(int count, long hidden, long vOut) : base(nameof(Inner))
            {
                for (int i = 0; i < count; i++) layers.Add(new Block(hidden, vOut));
                RegisterComponents();
            }

            public override Tensor forward(Tensor x)
            {
                foreach (Block b in layers) x = b.forward(x);
                return x;
            }
        }

        private sealed class Block : nn.Module<Tensor, Tensor>
        {
            private readonly Attention self_attn;

            public Block(long hidden, long vOut) : base(nameof(Block))
            {
                self_attn = new Attention(hidden, vOut);
                RegisterComponents();
            }

            public override Tensor forward(Tensor x) => self_attn.forward(x);
        }

        private sealed class Attention : nn.Module<Tensor, Tensor>
        {
            private readonly nn.Module<Tensor, Tensor> q_proj;
            private readonly nn.Module<Tensor, Tensor> v_proj;

            public Attention(long hidden, long vOut) : base(nameof(Attention))
            {
                q_proj = nn.Linear(hidden, hidden);
                v_proj = nn.Linear(hidden, vOut);
                RegisterComponents();
            }

            public override Tensor forward(Tensor x) => x + q_proj.forward(x) + v_proj.forward(x).sum(-1, keepdim: true);
        }
    }
}
