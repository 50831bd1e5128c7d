using System.Text.Json.Nodes;
using PeftHost.Abstractions.Config;
using PeftHost.Abstractions.State;
using PeftHost.Engine.Inference;
using PeftHost.Engine.Inference.Backends;
using PeftHost.Engine.Peft;
using PeftHost.Engine.Plugins;
using PeftHost.Models;
using PeftHost.Models.Generation;
using PeftHost.Tests.Llama;
using PeftHost.Tests.Support;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace PeftHost.Tests.Reliability;

/// <summary>
/// Inputs chosen to break each public entry point: every one ends in a documented exception naming what is
/// wrong (never a native error), and nothing is half-applied: the adapters and the outputs are as before.
/// </summary>
public sealed class BoundaryInputTests : IDisposable
{
    private readonly ScratchFolder _scratch = new();
    private readonly PluginCatalog _catalog;

    public BoundaryInputTests()
    {
        _catalog = new PluginCatalog(new PluginCatalogOptions { PluginsDirectory = PluginDirs.Installed, HotReload = false });
        _catalog.Scan();
    }

    public void Dispose()
    {
        _catalog.Dispose();
        _scratch.Dispose();
    }

    [Theory]
    [InlineData("a/b", "path separator")]
    [InlineData("/tmp/elsewhere", "path separator")]
    [InlineData("..\\up", "contains '.'")]
    [InlineData("c:\\x", "path separator")]
    [InlineData("tab\there", "control character")]
    public void Adapter_names_that_would_leave_the_save_folder_are_refused(string name, string reason)
    {
        using var peft = new PeftModel(new TwoBlocks(), _catalog);
        var e = Assert.Throws<ArgumentException>(() => peft.AddAdapter(name, Configs.Lora("q_proj")));
        Assert.Contains(reason, e.Message);
        Assert.Empty(peft.Adapters);
    }

    [Fact]
    public void Peft_model_entry_points_refuse_bad_arguments_and_change_nothing()
    {
        var model = new TwoBlocks();
        using var peft = new PeftModel(model, _catalog);
        peft.AddAdapter("a", Configs.Lora("q_proj", "v_proj"));
        peft.AddAdapter("b", Configs.Lora("q_proj"));
        using Tensor x = torch.randn(3, 8);
        using Tensor before = peft.Forward(x);

        Assert.Throws<ArgumentNullException>(() => peft.AddAdapter("c", null!));
        Assert.Contains("peft_type must name a PEFT method", Assert.Throws<TunerConfigException>(() => peft.AddAdapter("c", new JsonObject { ["peft_type"] = 42 })).Message);
        Assert.Contains("found none", Assert.Throws<TunerConfigException>(() => peft.AddAdapter("c", new JsonObject { ["r"] = 4 })).Message);
        Assert.Contains("names 'a' twice", Assert.Throws<ArgumentException>(() => peft.SetActiveAdapters("a", "a")).Message);
        Assert.Contains("No adapter named 'z'", Assert.Throws<KeyNotFoundException>(() => peft.SetActiveAdapters("a", "z")).Message);
        Assert.Throws<KeyNotFoundException>(() => peft.DeleteAdapter("z"));
        Assert.Throws<KeyNotFoundException>(() => peft.ExportAdapter("z"));
        Assert.Throws<KeyNotFoundException>(() => peft.Merge(["z"]));
        Assert.Throws<ArgumentOutOfRangeException>(() => peft.PrepareForHotswap(0));
        Assert.Contains("1 weights for 2 adapters", Assert.Throws<ArgumentException>(() => peft.AddWeightedAdapter(["a", "b"], [1.0], "ab", "linear")).Message);
        Assert.Contains("not a finite number", Assert.Throws<ArgumentException>(() => peft.AddWeightedAdapter(["a", "b"], [1.0, double.NaN], "ab", "linear")).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => peft.AddWeightedAdapter(["a", "b"], [1.0, 1.0], "ab", "svd", svdRank: 0));
        Assert.Contains("needs at least one adapter", Assert.Throws<ArgumentException>(() => peft.AddWeightedAdapter([], [], "ab", "linear")).Message);

        // Mixed batches: one name per row, names of adapters, nothing merged.
        Assert.Contains("2 entries for a batch of 3 rows", Assert.Throws<ArgumentException>(() => peft.Forward(x, ["a", "b"])).Message);
        Assert.Contains("holds null", Assert.Throws<ArgumentException>(() => peft.Forward(x, ["a", null!, "b"])).Message);
        Assert.Contains("'z', which is not an adapter", Assert.Throws<KeyNotFoundException>(() => peft.Forward(x, ["a", "z", "b"])).Message);
        Assert.Throws<ArgumentNullException>(() => peft.Forward(null!));

        Assert.Equal(["a", "b"], peft.Adapters);
        Assert.Equal(["a"], peft.ActiveAdapters);
        using Tensor after = peft.Forward(x);
        Assert.Equal(0.0, Tensors.MaxAbsDiff(before, after));
    }

    [Fact]
    public void Merging_an_adapter_twice_merges_it_once_and_a_mixed_batch_while_merged_is_refused()
    {
        var model = new TwoBlocks();
        using var peft = new PeftModel(model, _catalog);
        peft.AddAdapter("a", Configs.Lora("q_proj", "v_proj"));
        using Tensor x = torch.randn(2, 8);
        using Tensor unmerged = peft.Forward(x);
        peft.Merge(["a", "a"]);
        peft.Merge();
        Assert.Equal(["a"], peft.MergedAdapters);
        using (Tensor merged = peft.Forward(x)) Assert.True(Tensors.MaxAbsDiff(merged, unmerged) < 1e-5);
        var e = Assert.Throws<InvalidOperationException>(() => peft.Forward(x, ["a", "__base__"]));
        Assert.Contains("needs unmerged adapters; merged now: a", e.Message);
        peft.Unmerge();
        using (Tensor back = peft.Forward(x)) Assert.True(Tensors.MaxAbsDiff(back, unmerged) < 1e-5);
    }

    [Fact]
    public void Imported_tensors_of_the_wrong_shape_or_dtype_are_refused_by_every_layer_tuner_and_nothing_is_applied()
    {
        foreach (JsonObject config in new[]
        {
            Configs.Lora("q_proj", "v_proj"),
            new JsonObject { ["peft_type"] = "IA3", ["target_modules"] = new JsonArray("q_proj", "v_proj"), ["feedforward_modules"] = new JsonArray() },
            new JsonObject { ["peft_type"] = "ADALORA", ["target_modules"] = new JsonArray("q_proj", "v_proj"), ["init_r"] = 4, ["target_r"] = 2, ["total_step"] = 10 },
        })
        {
            string peftType = config["peft_type"]!.GetValue<string>();
            var model = new TwoBlocks();
            using var peft = new PeftModel(model, _catalog);
            peft.AddAdapter("good", config);
            using AdapterState good = peft.ExportAdapter("good");
            using Tensor x = torch.randn(2, 8);
            using Tensor before = peft.Forward(x);
            string key = good.Tensors.Keys.Order(StringComparer.Ordinal).First();

            foreach ((string what, Func<Tensor, Tensor> corrupt, string expected) in new (string, Func<Tensor, Tensor>, string)[]
            {
                ("shape", t => torch.zeros([.. t.shape.Select(d => d + 1)]), "has shape"),
                ("rank", t => torch.zeros([1, .. t.shape]), "has shape"),
                ("dtype", t => torch.zeros(t.shape, dtype: ScalarType.Int64), "Int64"),
                ("missing", _ => null!, "Missing"),
            })
            {
                var tensors = good.Tensors.ToDictionary(t => t.Key, t => t.Value, StringComparer.Ordinal);
                if (what == "missing") tensors.Remove(key);
                else tensors[key] = corrupt(good.Tensors[key]);
                var badConfig = (JsonObject)good.Config.DeepClone();
                badConfig["inference_mode"] = true; // AdaLoRA trains one adapter at a time
                var bad = new AdapterState("bad", badConfig, tensors);
                var e = Assert.Throws<InvalidDataException>(() => peft.ImportAdapter(bad));
                Assert.True(e.Message.Contains(expected, StringComparison.Ordinal) && e.Message.Contains(key, StringComparison.Ordinal), $"{peftType} {what}: {e.Message}");
                Assert.Equal(["good"], peft.Adapters);
                using Tensor after = peft.Forward(x);
                Assert.True(Tensors.MaxAbsDiff(before, after) == 0, $"{peftType} {what}: the model changed");
            }
        }
    }

    [Fact]
    public void A_hotswap_with_malformed_factors_is_refused_before_any_buffer_changes()
    {
        var model = new TwoBlocks();
        using var peft = new PeftModel(model, _catalog);
        peft.AddAdapter("a", Configs.Lora("q_proj", "v_proj"));
        peft.PrepareForHotswap(4);
        using AdapterState state = peft.ExportAdapter("a");
        using Tensor x = torch.randn(2, 8);
        using Tensor before = peft.Forward(x);
        string key = state.Tensors.Keys.First(k => k.EndsWith(".lora_A.weight", StringComparison.Ordinal));
        foreach (Tensor replacement in new[] { torch.zeros(8), torch.zeros(new long[] { 2, 8 }, dtype: ScalarType.Int32), torch.zeros(2, 8, 1) })
        {
            var tensors = state.Tensors.ToDictionary(t => t.Key, t => t.Value, StringComparer.Ordinal);
            tensors[key] = replacement;
            var e = Assert.Throws<InvalidDataException>(() => peft.Hotswap(new AdapterState("a", (JsonObject)state.Config.DeepClone(), tensors)));
            Assert.Contains("expected a floating-point matrix", e.Message);
            using Tensor after = peft.Forward(x);
            Assert.Equal(0.0, Tensors.MaxAbsDiff(before, after));
        }
    }

    [Fact]
    public void A_model_loads_only_in_a_floating_point_dtype()
    {
        var e = Assert.Throws<ArgumentException>(() => ModelFactory.Load(Conformance.Case("base_llama"), ScalarType.Int64));
        Assert.Contains("not Int64", e.Message);
    }

    /// <summary>The torch backend checks ids, lengths and settings when called, before anything runs.</summary>
    [Fact]
    public void The_torch_backend_checks_ids_lengths_and_generation_settings_up_front()
    {
        string model = TinyLlama();
        using IInferenceBackend torch = InferenceBackends.Open(LlamaFixtures.Options(InferenceBackendKind.Torch, model, Path.Combine(_scratch.Path, "cache")));
        BackendRefusesBadRequests(torch);
    }

    [Fact]
    public void The_llama_backend_checks_ids_lengths_settings_and_its_context_up_front()
    {
        string model = TinyLlama();
        string cache = Path.Combine(_scratch.Path, "cache");
        using (IInferenceBackend llama = InferenceBackends.Open(LlamaFixtures.Options(InferenceBackendKind.Llama, model, cache)))
            BackendRefusesBadRequests(llama);
        var e = Assert.Throws<ArgumentException>(() => InferenceBackends.Open(LlamaFixtures.Options(InferenceBackendKind.Llama, model, cache) with { ContextSize = 4096 }));
        Assert.Contains("more than the model's context of 128", e.Message);
    }

    [Fact]
    public void The_vulkan_backend_checks_ids_lengths_settings_and_its_context_up_front()
    {
        string model = TinyLlama();
        string cache = Path.Combine(_scratch.Path, "cache");
        using (IInferenceBackend vulkan = InferenceBackends.Open(LlamaFixtures.Options(InferenceBackendKind.Vulkan, model, cache)))
            BackendRefusesBadRequests(vulkan);
        var e = Assert.Throws<ArgumentException>(() => InferenceBackends.Open(LlamaFixtures.Options(InferenceBackendKind.Vulkan, model, cache) with { ContextSize = 4096 }));
        Assert.Contains("more than the model's context of 128", e.Message);
    }

    [Fact]
    public void Text_generation_refuses_an_empty_stop_string_and_a_request_beyond_the_context()
    {
        string model = TinyLlama();
        using IInferenceBackend torch = InferenceBackends.Open(LlamaFixtures.Options(InferenceBackendKind.Torch, model, Path.Combine(_scratch.Path, "cache")));
        var empty = new TextGenerationSettings { StopStrings = ["stop", ""] };
        Assert.Contains("stop string is empty", Assert.Throws<ArgumentException>(() => TextGenerator.Generate(torch, "hello", empty)).Message);
        var tooLong = new TextGenerationSettings { Generation = new GenerationOptions { MaxNewTokens = 1000 } };
        string text = "";
        var e = Assert.Throws<ModelInputException>(() => TextGenerator.Generate(torch, "hello", tooLong, piece => text += piece));
        Assert.Contains("max_new_tokens 1000 exceed the context of 128 positions", e.Message);
        Assert.Equal("", text); // refused before the first token
    }

    private static void BackendRefusesBadRequests(IInferenceBackend backend)
    {
        int context = backend.ContextSize, vocab = backend.VocabSize;
        string name = backend.Kind.ToString();
        Expect(() => backend.Logits([]), "ids is empty");
        Expect(() => backend.Logits([1, vocab, 2]), $"ids[1] is {vocab}, outside the vocabulary [0, {vocab})");
        Expect(() => backend.Logits([3, -1]), "ids[1] is -1");
        Expect(() => backend.Logits([.. Enumerable.Repeat(1, context + 1)]), $"more than the context of {context}");
        var greedy = new GenerationOptions { MaxNewTokens = 4 };
        // Generate refuses at the call, not when the stream is first read.
        Expect(() => backend.Generate([1, 2], greedy with { MaxNewTokens = 0 }), "max_new_tokens is 0");
        Expect(() => backend.Generate([1, 2], greedy with { MaxNewTokens = context }), $"2 prompt tokens + max_new_tokens {context} exceed");
        Expect(() => backend.Generate([1, vocab], greedy), "outside the vocabulary");
        Expect(() => backend.Generate([], greedy), "prompt is empty");
        Expect(() => backend.Generate([1], greedy with { DoSample = true, Temperature = double.NaN }), "positive, finite temperature");
        Expect(() => backend.Generate([1], greedy with { DoSample = true, Temperature = 0 }), "positive, finite temperature");
        Expect(() => backend.Generate([1], greedy with { TopK = -1 }), "top_k is -1");
        Expect(() => backend.Generate([1], greedy with { TopP = 1.5 }), "top_p is 1.5");
        Expect(() => backend.Generate([1], greedy with { RepetitionPenalty = 0 }), "repetition_penalty is 0");
        Assert.Throws<KeyNotFoundException>(() => backend.Logits([1, 2], [new AdapterScale("nope", 1.0)]));
        // Still serving.
        Assert.Equal(2 * vocab, backend.Logits([1, 2]).Length);
        Assert.InRange(backend.Generate([1, 2], greedy with { MaxNewTokens = 3 }).Count(), 1, 3);

        void Expect(Action call, string message)
        {
            var e = Assert.Throws<ModelInputException>(call);
            Assert.True(e.Message.Contains(message, StringComparison.Ordinal), $"{name}: '{e.Message}' does not say '{message}'");
        }
    }

    private string TinyLlama()
    {
        string folder = Path.Combine(_scratch.Path, "tiny");
        if (!Directory.Exists(folder)) ModelPresets.Write("llama", "tiny", folder, seed: 5);
        return folder;
    }
}
