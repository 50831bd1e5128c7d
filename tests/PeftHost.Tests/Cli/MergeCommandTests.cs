using System.Text.Json.Nodes;
using PeftHost.Engine.Inference;
using PeftHost.Engine.Peft;
using PeftHost.Engine.Plugins;
using PeftHost.Formats.Safetensors;
using PeftHost.Models;
using PeftHost.Models.Checkpoint;
using PeftHost.Models.Config;
using PeftHost.Tests.Support;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace PeftHost.Tests.CommandLine;

public class MergeCommandTests
{
    private static string Base => Conformance.Case("base_llama");

    private static string Adapter => Path.Combine(Conformance.Case("lora_qv"), "adapter");

    private static Tensor Logits(string modelFolder, Tensor ids)
    {
        (_, nn.Module model) = ModelFactory.Load(modelFolder);
        using (model)
        using (no_grad()) return ((ICausalLM)model).Forward(ids);
    }

    [Fact]
    public void Merged_folder_gives_the_unmerged_logits_and_peft_merged_state_dict()
    {
        using var dir = new ScratchFolder();
        string output = Path.Combine(dir.Path, "merged");
        MergedModelWriter.Result result = MergedModelWriter.Merge(Base, [AdapterSpec.FromFolder(Adapter, 0)], output, PluginDirs.Installed);
        Assert.Equal([SafetensorsCheckpoint.SingleFileName], result.Files);
        Assert.Contains("generation_config.json", result.Copied);

        using Tensor ids = Conformance.Inputs("lora_qv", "input_ids")!;
        using Tensor merged = Logits(output, ids);
        using Tensor unmerged = Conformance.Reference("lora_qv/logits_adapter.safetensors");
        Assert.True(Tensors.MaxAbsDiff(merged, unmerged) < 1e-4);

        using var ours = SafetensorsCheckpoint.Open(output);
        using var peft = SafetensorsFile.Open(Path.Combine(Conformance.Case("lora_qv"), "merged_model.safetensors"));
        Assert.Equal(peft.Tensors.Select(t => t.Name).Order(StringComparer.Ordinal), ours.Names);
        foreach (string name in ours.Names)
        {
            using Tensor a = TensorBridge.Read(ours.FileOf(name), name);
            using Tensor b = TensorBridge.Read(peft, name);
            Assert.True(Tensors.MaxAbsDiff(a, b) < 1e-5, name);
        }
        JsonNode config = JsonNode.Parse(File.ReadAllText(Path.Combine(output, "config.json")))!;
        Assert.Equal("float32", config["torch_dtype"]!.GetValue<string>());
        Assert.Equal(256, config["vocab_size"]!.GetValue<int>());
    }

    [Fact]
    public void Logits_merge_equals_the_unmerged_logits()
    {
        using var dir = new ScratchFolder();
        string inputs = Path.Combine(Conformance.Case("lora_qv"), "inputs.json");
        string plain = Path.Combine(dir.Path, "plain.safetensors"), merged = Path.Combine(dir.Path, "merged.safetensors");
        LogitsRunner.Run(Base, [AdapterSpec.FromFolder(Adapter, 0)], inputs, plain, PluginDirs.Installed, ScalarType.Float32, CPU);
        (int code, _, string stderr) = Cli.Run("logits", "--model", Base, "--adapter", Adapter, "--merge", "--inputs", inputs, "--out", merged);
        Assert.True(code == 0, stderr);
        using var a = SafetensorsFile.Open(plain);
        using var b = SafetensorsFile.Open(merged);
        using Tensor expected = Conformance.Reference("lora_qv/logits_merged.safetensors");
        Assert.True(Tensors.MaxAbsDiff(TensorBridge.Read(a, "logits"), TensorBridge.Read(b, "logits")) < 1e-4);
        Assert.True(Tensors.MaxAbsDiff(TensorBridge.Read(b, "logits"), expected) < 1e-4);
    }

    [Fact]
    public void A_non_empty_output_is_refused_without_force_and_dtype_is_applied()
    {
        using var dir = new ScratchFolder();
        string output = Path.Combine(dir.Path, "out");
        (int code, string stdout, string stderr) = Cli.Run("merge", "--model", Base, "--adapter", Adapter, "--out", output, "--dtype", "bf16");
        Assert.True(code == 0, stderr);
        Assert.Contains("BFloat16", stdout);
        using (var checkpoint = SafetensorsCheckpoint.Open(output))
            Assert.All(checkpoint.Names, n => Assert.Equal(SafetensorsDType.BF16, checkpoint.Info(n).DType));
        Assert.Equal("bfloat16", JsonNode.Parse(File.ReadAllText(Path.Combine(output, "config.json")))!["torch_dtype"]!.GetValue<string>());
        (_, nn.Module model) = ModelFactory.Load(output, ScalarType.BFloat16);
        model.Dispose();

        (code, _, stderr) = Cli.Run("merge", "--model", Base, "--adapter", Adapter, "--out", output);
        Assert.Equal(2, code);
        Assert.Contains("not empty", stderr);
        Assert.Contains("--force", stderr);

        (code, _, stderr) = Cli.Run("merge", "--model", Base, "--adapter", Adapter, "--out", output, "--force");
        Assert.True(code == 0, stderr);
        using (var checkpoint = SafetensorsCheckpoint.Open(output))
            Assert.All(checkpoint.Names, n => Assert.Equal(SafetensorsDType.F32, checkpoint.Info(n).DType));
        Assert.Empty(Directory.GetFiles(output, "*.tmp"));

        (code, _, stderr) = Cli.Run("merge", "--model", Base, "--adapter", Adapter, "--out", Base, "--force");
        Assert.Equal(2, code);
        Assert.Contains("base model's folder", stderr);
    }

    [Fact]
    public void A_small_threshold_shards_the_checkpoint_with_an_index_and_a_later_single_file_replaces_it()
    {
        using var dir = new ScratchFolder();
        string output = Path.Combine(dir.Path, "sharded");
        var adapters = new[] { AdapterSpec.FromFolder(Adapter, 0) };
        MergedModelWriter.Result result = MergedModelWriter.Merge(Base, adapters, output, PluginDirs.Installed, maxShardBytes: 100_000);
        Assert.True(result.Files.Count > 1);
        Assert.True(File.Exists(Path.Combine(output, SafetensorsWriter.IndexFileName)));
        using Tensor ids = Conformance.Inputs("lora_qv", "input_ids")!;
        using Tensor expected = Conformance.Reference("lora_qv/logits_adapter.safetensors");
        using (Tensor logits = Logits(output, ids)) Assert.True(Tensors.MaxAbsDiff(logits, expected) < 1e-4);

        MergedModelWriter.Merge(Base, adapters, output, PluginDirs.Installed, force: true);
        Assert.Equal([SafetensorsCheckpoint.SingleFileName], Directory.GetFiles(output, "*.safetensors").Select(Path.GetFileName));
        Assert.False(File.Exists(Path.Combine(output, SafetensorsWriter.IndexFileName)));
    }

    [Fact]
    public void Tied_embeddings_stay_tied_and_modules_to_save_copies_replace_the_originals()
    {
        using var dir = new ScratchFolder();
        string baseFolder = Path.Combine(dir.Path, "tied"), adapterFolder = Path.Combine(dir.Path, "adapter"), output = Path.Combine(dir.Path, "out");
        JsonObject raw = ModelPresets.Config("llama", "tiny");
        raw["tie_word_embeddings"] = true;
        ModelConfig config = ModelConfigReader.Parse(raw, "tied llama");
        torch.manual_seed(3);
        nn.Module model = ModelFactory.Create(config);
        ModelFactory.Save(model, config, baseFolder);
        using Tensor ids = torch.randint(0, config.VocabSize, [2, 9], dtype: ScalarType.Int64);
        Tensor unmerged;
        const string saved = "model.layers.0.self_attn.o_proj.weight";
        using Tensor original = model.named_parameters().Single(p => p.name == saved).parameter.detach().clone();
        using (var catalog = new PluginCatalog(new PluginCatalogOptions { PluginsDirectory = PluginDirs.Installed, HotReload = false }))
        {
            catalog.Scan();
            using var peft = new PeftModel(model, catalog);
            JsonObject lora = Configs.Lora("q_proj", "v_proj");
            lora["modules_to_save"] = new JsonArray("o_proj");
            peft.AddAdapter("default", lora);
            using (no_grad())
                foreach ((string name, var p) in model.named_parameters())
                    if (name.Contains("modules_to_save")) p.add_(0.5);
            peft.SavePretrained(adapterFolder);
            using (no_grad()) unmerged = peft.Run(() => ((ICausalLM)model).Forward(ids));
        }
        model.Dispose();

        MergedModelWriter.Merge(baseFolder, [AdapterSpec.FromFolder(adapterFolder, 0)], output, PluginDirs.Installed);
        using (var checkpoint = SafetensorsCheckpoint.Open(output))
        {
            Assert.DoesNotContain("lm_head.weight", checkpoint.Names);
            Assert.Contains("model.embed_tokens.weight", checkpoint.Names);
            Assert.DoesNotContain(checkpoint.Names, n => n.Contains("lora_") || n.Contains("modules_to_save") || n.Contains("base_layer"));
            using Tensor copy = TensorBridge.Read(checkpoint.FileOf(saved), saved);
            Assert.True(Tensors.MaxAbsDiff(copy, original + 0.5) < 1e-6);
        }
        Assert.True(JsonNode.Parse(File.ReadAllText(Path.Combine(output, "config.json")))!["tie_word_embeddings"]!.GetValue<bool>());
        using (unmerged)
        using (Tensor merged = Logits(output, ids)) Assert.True(Tensors.MaxAbsDiff(merged, unmerged) < 1e-4);
    }
}
