using System.Text.Json.Nodes;
using PeftHost.Engine.Inference;
using PeftHost.Formats.Safetensors;
using PeftHost.Models;
using PeftHost.Models.Checkpoint;
using PeftHost.Models.Config;
using PeftHost.Models.Generation;
using PeftHost.Tests.Support;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace PeftHost.Tests.Models;

/// <summary>What the conformance samples do not cover: tied heads, Qwen2 bias, Mistral's window, shards, BF16, the cache, errors.</summary>
public class ModelBehaviourTests
{
    private static readonly long[,] Sample = { { 47, 211, 38, 53, 204, 116, 152 }, { 249, 143, 177, 23, 233, 154, 30 } };

    private static Tensor Logits(nn.Module model, Tensor ids)
    {
        using (no_grad()) return ((ICausalLM)model).Forward(ids);
    }

    [Fact]
    public void Tied_embeddings_share_one_tensor_and_are_saved_once()
    {
        using var dir = new ScratchFolder();
        using nn.Module model = ModelFolders.Random(ModelFolders.LlamaConfig(j => j["tie_word_embeddings"] = true), dir.Path);
        using (var file = SafetensorsFile.Open(Path.Combine(dir.Path, "model.safetensors")))
        {
            Assert.True(file.Contains("model.embed_tokens.weight"));
            Assert.False(file.Contains("lm_head.weight"));
        }
        using var ids = ModelFolders.Ids(Sample);
        using var before = Logits(model, ids);
        (_, nn.Module loaded) = ModelFactory.Load(dir.Path);
        using (loaded)
        {
            using var after = Logits(loaded, ids);
            Assert.Equal(0.0, Tensors.MaxAbsDiff(before, after));
            // Changing the embedding changes the head: one tensor under two names.
            var parameters = loaded.named_parameters().ToDictionary(p => p.name, p => p.parameter);
            using (no_grad()) parameters["model.embed_tokens.weight"].mul_(2);
            Assert.Equal(0.0, Tensors.MaxAbsDiff(parameters["lm_head.weight"], parameters["model.embed_tokens.weight"]));
        }
    }

    [Fact]
    public void Qwen2_has_bias_on_q_k_v_only_and_it_takes_part()
    {
        using var dir = new ScratchFolder();
        JsonObject config = ModelFolders.LlamaConfig(j => { j["model_type"] = "qwen2"; j["architectures"] = new JsonArray("Qwen2ForCausalLM"); });
        using nn.Module model = ModelFolders.Random(config, dir.Path);
        var names = model.named_parameters().Select(p => p.name).ToHashSet();
        Assert.Contains("model.layers.0.self_attn.q_proj.bias", names);
        Assert.Contains("model.layers.0.self_attn.k_proj.bias", names);
        Assert.Contains("model.layers.0.self_attn.v_proj.bias", names);
        Assert.DoesNotContain("model.layers.0.self_attn.o_proj.bias", names);
        using var ids = ModelFolders.Ids(Sample);
        using var withBias = Logits(model, ids);
        (_, nn.Module loaded) = ModelFactory.Load(dir.Path);
        using (loaded)
        {
            using var reloaded = Logits(loaded, ids);
            Assert.Equal(0.0, Tensors.MaxAbsDiff(withBias, reloaded));
            using (no_grad()) loaded.named_parameters().Single(p => p.name == "model.layers.0.self_attn.v_proj.bias").parameter.zero_();
            using var zeroed = Logits(loaded, ids);
            Assert.True(Tensors.MaxAbsDiff(withBias, zeroed) > 1e-3);
        }
    }

    [Fact]
    public void Mistral_sliding_window_matches_a_windowed_reference()
    {
        // One layer: the last position with a window of 4 attends exactly to the last 4 tokens, and
        // RoPE depends only on relative positions, so it must equal the unwindowed model on those 4.
        using var dir = new ScratchFolder();
        JsonObject mistral = ModelFolders.LlamaConfig(j =>
        {
            j["model_type"] = "mistral"; j["architectures"] = new JsonArray("MistralForCausalLM"); j["sliding_window"] = 4; j["num_hidden_layers"] = 1;
        });
        using nn.Module windowed = ModelFolders.Random(mistral, dir.Path);
        JsonObject llama = ModelFolders.LlamaConfig(j => j["num_hidden_layers"] = 1);
        using nn.Module full = ModelFactory.Create(ModelConfigReader.Parse(llama));
        using (var ckpt = SafetensorsCheckpoint.Open(dir.Path)) CheckpointLoader.Load(full, ckpt);
        full.eval();

        long[] tokens = [5, 17, 200, 33, 91, 4, 250, 64, 12, 77, 130, 8];
        using var ids = torch.tensor(tokens).unsqueeze(0);
        using var lastFour = torch.tensor(tokens[^4..]).unsqueeze(0);
        using var w = Logits(windowed, ids);
        using var f = Logits(full, ids);
        using var reference = Logits(full, lastFour);
        Assert.True(Tensors.MaxAbsDiff(w.select(1, 11), reference.select(1, 3)) < 1e-4, $"max |diff| = {Tensors.MaxAbsDiff(w.select(1, 11), reference.select(1, 3))}");
        Assert.True(Tensors.MaxAbsDiff(w.narrow(1, 0, 4), f.narrow(1, 0, 4)) < 1e-5); // inside the window nothing changes
        Assert.True(Tensors.MaxAbsDiff(w.select(1, 11), f.select(1, 11)) > 1e-3);  // beyond it, the window bites

        // Token by token with the cache, the window applies the same way.
        var lm = (ICausalLM)windowed;
        using var cache = lm.CreateCache(1, tokens.Length);
        using (no_grad())
        {
            for (int i = 0; i < tokens.Length; i++)
            {
                using var one = torch.tensor(new[] { tokens[i] }).unsqueeze(0);
                using var step = lm.Forward(one, cache: cache, startPosition: i);
                Assert.True(Tensors.MaxAbsDiff(step.select(1, 0), w.select(1, i)) < 1e-4, $"position {i}");
            }
        }
    }

    [Fact]
    public void A_sharded_checkpoint_loads_to_the_reference_logits()
    {
        using var dir = new ScratchFolder();
        File.Copy(Path.Combine(Conformance.Case("base_llama"), "config.json"), Path.Combine(dir.Path, "config.json"));
        using (var source = SafetensorsFile.Open(Path.Combine(Conformance.Case("base_llama"), "model.safetensors")))
            SafetensorsWriter.WriteSharded(dir.Path, source.Tensors.Select(t => SafetensorsWriteTensor.FromBytes(t.Name, t.DType, t.Shape, source.GetBytes(t.Name).ToArray())), maxShardBytes: 150_000);
        Assert.True(Directory.GetFiles(dir.Path, "model-*-of-*.safetensors").Length >= 3);
        (_, nn.Module model) = ModelFactory.Load(dir.Path);
        using (model)
        using (var ids = Conformance.Inputs("base_llama", "input_ids")!)
        using (var expected = Conformance.Reference("base_llama/logits.safetensors"))
        using (var logits = Logits(model, ids))
            Assert.True(Tensors.MaxAbsDiff(logits, expected) < 1e-4);
    }

    [Fact]
    public void Bf16_weights_load_as_their_exact_values()
    {
        using var dir = new ScratchFolder();
        File.Copy(Path.Combine(Conformance.Case("base_llama"), "config.json"), Path.Combine(dir.Path, "config.json"));
        using (var source = SafetensorsFile.Open(Path.Combine(Conformance.Case("base_llama"), "model.safetensors")))
            SafetensorsWriter.Write(Path.Combine(dir.Path, "model.safetensors"), source.Tensors.Select(t => SafetensorsWriteTensor.FromSingles(t.Name, t.Shape, source.ReadSingles(t.Name), SafetensorsDType.BF16)));
        (_, nn.Module fromBf16) = ModelFactory.Load(dir.Path);
        (_, nn.Module rounded) = ModelFactory.Load(Conformance.Case("base_llama"));
        using (fromBf16)
        using (rounded)
        {
            using (no_grad())
                foreach (var p in rounded.parameters()) p.copy_(p.to(ScalarType.BFloat16).to(ScalarType.Float32));
            foreach (((string name, var a), (_, var b)) in fromBf16.named_parameters().Zip(rounded.named_parameters()))
                Assert.True(Tensors.MaxAbsDiff(a, b) == 0, name);
            using var ids = ModelFolders.Ids(Sample);
            using var x = Logits(fromBf16, ids);
            using var y = Logits(rounded, ids);
            Assert.Equal(0.0, Tensors.MaxAbsDiff(x, y));
            // And the model also runs in bf16 (--dtype bf16), close to float32.
            (_, nn.Module bf16) = ModelFactory.Load(Conformance.Case("base_llama"), ScalarType.BFloat16);
            using (bf16)
            {
                Assert.Equal(ScalarType.BFloat16, bf16.parameters().First().dtype);
                using var z = Logits(bf16, ids);
                using var expected = Conformance.Reference("base_llama/logits.safetensors");
                Assert.True(Tensors.MaxAbsDiff(z.to(ScalarType.Float32), expected) < 0.5);
            }
        }
    }

    [Theory]
    [InlineData("base_llama")]
    [InlineData("base_gpt2")]
    public void Greedy_generation_is_identical_with_and_without_the_cache(string sample)
    {
        (_, nn.Module model) = ModelFactory.Load(Conformance.Case(sample));
        using (model)
        {
            var lm = (ICausalLM)model;
            long[] prompt = [47, 211, 38, 53, 204];
            var streamed = new List<long>();
            IReadOnlyList<long> cached = TokenGenerator.Generate(lm, prompt, new GenerationOptions { MaxNewTokens = 20 }, streamed.Add);
            List<long> uncached = [.. TokenGenerator.Generate(lm, prompt, new GenerationOptions { MaxNewTokens = 20, UseCache = false })];
            Assert.Equal(20, cached.Count);
            Assert.Equal(uncached, cached);
            Assert.Equal(cached, streamed);
            // The first token is the argmax of the reference forward's last position.
            using var ids = torch.tensor(prompt).unsqueeze(0);
            using var logits = Logits(model, ids);
            Assert.Equal(logits[0, -1].argmax().item<long>(), cached[0]);
            // A stop token ends generation after it is produced.
            List<long> stopped = [.. TokenGenerator.Generate(lm, prompt, new GenerationOptions { MaxNewTokens = 20, StopTokenIds = [cached[2]] })];
            Assert.Equal(cached.Take(cached.ToList().IndexOf(cached[2]) + 1), stopped);
        }
    }

    [Fact]
    public void Sampling_follows_top_k_top_p_and_the_repetition_penalty()
    {
        using var logits = torch.tensor(new float[] { 2.0f, 1.0f, 0.5f, -1.0f, 3.0f });
        // Repetition penalty 2 on tokens 4 (3.0 → 1.5) and 3 (-1 → -2): greedy now picks token 0.
        Assert.Equal(0, TokenGenerator.Choose(logits, [4, 3], new GenerationOptions { RepetitionPenalty = 2 }, null));
        // top_k 1 leaves only the argmax, whatever the seed.
        using var rng = new torch.Generator(3);
        for (int i = 0; i < 5; i++) Assert.Equal(4, TokenGenerator.Choose(logits, [], new GenerationOptions { DoSample = true, TopK = 1 }, rng));
        // top_p 0.6: softmax = [.237,.087,.053,.012,.645]; the top token alone reaches 0.6.
        for (int i = 0; i < 5; i++) Assert.Equal(4, TokenGenerator.Choose(logits, [], new GenerationOptions { DoSample = true, TopP = 0.6 }, rng));
        // top_p 0.8: tokens 4 and 0 (0.645 + 0.237) only.
        for (int i = 0; i < 20; i++) Assert.Contains(TokenGenerator.Choose(logits, [], new GenerationOptions { DoSample = true, TopP = 0.8 }, rng), new long[] { 0, 4 });
    }

    [Fact]
    public void A_shape_mismatch_names_the_tensor_and_both_shapes()
    {
        using var dir = new ScratchFolder();
        File.WriteAllText(Path.Combine(dir.Path, "config.json"), ModelFolders.LlamaConfig(j => j["intermediate_size"] = 96).ToJsonString());
        File.Copy(Path.Combine(Conformance.Case("base_llama"), "model.safetensors"), Path.Combine(dir.Path, "model.safetensors"));
        var e = Assert.Throws<InvalidDataException>(() => ModelFactory.Load(dir.Path));
        Assert.StartsWith($"Checkpoint '{Path.Combine(dir.Path, "model.safetensors")}' does not fit LlamaForCausalLM: " +
            "tensor 'model.layers.0.mlp.down_proj.weight' has shape [64, 128] in the checkpoint but the model expects [64, 96]; ", e.Message);

        File.WriteAllText(Path.Combine(dir.Path, "config.json"), ModelFolders.LlamaConfig(j => j["num_hidden_layers"] = 3).ToJsonString());
        e = Assert.Throws<InvalidDataException>(() => ModelFactory.Load(dir.Path));
        Assert.Contains("tensor 'model.layers.2.self_attn.q_proj.weight' is missing from the checkpoint", e.Message);

        File.WriteAllText(Path.Combine(dir.Path, "config.json"), ModelFolders.LlamaConfig(j => j["num_hidden_layers"] = 1).ToJsonString());
        e = Assert.Throws<InvalidDataException>(() => ModelFactory.Load(dir.Path));
        Assert.Contains("tensor 'model.layers.1.mlp.down_proj.weight' is not a parameter of the model", e.Message);
    }

    [Fact]
    public void Unsupported_architectures_and_pickle_only_folders_are_refused_clearly()
    {
        using var dir = new ScratchFolder();
        File.WriteAllText(Path.Combine(dir.Path, "config.json"), """{"model_type": "falcon", "architectures": ["FalconForCausalLM"]}""");
        var e = Assert.Throws<NotSupportedException>(() => ModelFactory.Load(dir.Path));
        Assert.Equal($"{Path.Combine(dir.Path, "config.json")}: model_type 'falcon' is not supported (supported: llama, mistral, qwen2, bert, gpt2).", e.Message);

        File.Copy(Path.Combine(Conformance.Case("base_llama"), "config.json"), Path.Combine(dir.Path, "config.json"), overwrite: true);
        File.WriteAllBytes(Path.Combine(dir.Path, "pytorch_model.bin"), [0x80, 0x02]);
        Assert.Contains("holds only a pickle checkpoint (pytorch_model.bin)", Assert.Throws<InvalidDataException>(() => ModelFactory.Load(dir.Path)).Message);
    }

    [Fact]
    public void Dropout_is_active_in_training_and_eval_is_deterministic()
    {
        (_, nn.Module model) = ModelFactory.Load(Conformance.Case("base_gpt2"));
        using (model)
        {
            using var ids = ModelFolders.Ids(Sample);
            using var a = Logits(model, ids);
            using var b = Logits(model, ids);
            Assert.Equal(0.0, Tensors.MaxAbsDiff(a, b));
            model.train();
            using var c = Logits(model, ids);
            Assert.True(Tensors.MaxAbsDiff(a, c) > 1e-3);
        }
    }

    [Fact]
    public void The_logits_runner_writes_adapter_and_classifier_logits_another_reader_can_load()
    {
        using var dir = new ScratchFolder();
        string outLora = Path.Combine(dir.Path, "lora.safetensors");
        long[] shape = LogitsRunner.Run(Conformance.Case("base_llama"), [AdapterSpec.FromFolder(Path.Combine(Conformance.Case("lora_qv"), "adapter"), 0)],
            Path.Combine(Conformance.Case("lora_qv"), "inputs.json"), outLora, PluginDirs.Installed, ScalarType.Float32, CPU);
        Assert.Equal([2L, 7, 256], shape);
        using (var written = Conformance.Reference(outLora))
        using (var expected = Conformance.Reference("lora_qv/logits_adapter.safetensors"))
            Assert.True(Tensors.MaxAbsDiff(written, expected) < 1e-4);

        string outBert = Path.Combine(dir.Path, "bert.safetensors");
        Assert.Equal([2L, 2], LogitsRunner.Run(Conformance.Case("base_bert"), [], Path.Combine(Conformance.Case("base_bert"), "inputs.json"), outBert, PluginDirs.Installed, ScalarType.Float32, CPU));
        using (var file = SafetensorsFile.Open(outBert))
        {
            Assert.Equal(SafetensorsDType.F32, file.Info("logits").DType);
            using var expected = Conformance.Reference("base_bert/logits.safetensors");
            Assert.True(Tensors.MaxAbsDiff(TensorBridge.Read(file, "logits"), expected) < 1e-4);
        }
    }

    [Theory]
    [InlineData("llama")]
    [InlineData("bert")]
    [InlineData("gpt2")]
    public void Tiny_presets_have_the_conformance_layout(string arch)
    {
        using var dir = new ScratchFolder();
        ModelPresets.Write(arch, "tiny", dir.Path, seed: 1);
        string sample = Conformance.Case("base_" + arch);
        using var ours = SafetensorsCheckpoint.Open(dir.Path);
        using var theirs = SafetensorsCheckpoint.Open(sample);
        Assert.Equal(theirs.Names, ours.Names);
        foreach (string n in theirs.Names) Assert.Equal(theirs.Info(n).Shape, ours.Info(n).Shape);
        (_, nn.Module model) = ModelFactory.Load(dir.Path);
        model.Dispose();
    }
}
