using System.Text.Json.Nodes;
using PeftHost.Engine.Peft;
using PeftHost.Engine.Plugins;
using PeftHost.Formats.Safetensors;
using PeftHost.Tests.Support;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace PeftHost.Tests;

public class ModulesToSaveTests
{
    private static JsonObject SeqClsLora()
    {
        JsonObject c = Configs.Lora("query", "value");
        c["task_type"] = "SEQ_CLS";
        return c;
    }

    private static void Train(PeftModel peft, string adapter)
    {
        // Stands in for training: move the trainable copy of the head away from the original.
        using (no_grad())
            foreach (var (name, p) in peft.NamedParameters())
                if (name.Contains($".modules_to_save.{adapter}.")) p.add_(0.25);
    }

    [Fact]
    public void Seq_cls_head_becomes_a_trainable_copy_saved_under_its_own_name()
    {
        using var catalog = new PluginCatalog(new PluginCatalogOptions { PluginsDirectory = PluginDirs.Installed });
        catalog.Scan();
        using var dir = new ScratchFolder();
        var model = new TinyClassifier();
        using var x = torch.randn(4, 8);
        using var baseOut = model.forward(x);
        using var peft = new PeftModel(model, catalog);
        peft.AddAdapter("default", SeqClsLora());
        Train(peft, "default");

        var trainable = peft.NamedParameters().Where(p => p.Parameter.requires_grad).Select(p => p.Name).ToHashSet();
        Assert.Contains("base_model.model.classifier.modules_to_save.default.weight", trainable);
        Assert.Contains("base_model.model.classifier.modules_to_save.default.bias", trainable);
        Assert.DoesNotContain("base_model.model.classifier.original_module.weight", trainable);
        Assert.Contains("base_model.model.query.lora_A.default.weight", trainable);

        using var adapted = peft.Forward(x);
        using (peft.DisableAdapter())
        {
            using var disabled = peft.Forward(x);
            Assert.Equal(0.0, Tensors.MaxAbsDiff(disabled, baseOut));
        }

        peft.SavePretrained(dir.Path);
        using (SafetensorsFile file = SafetensorsFile.Open(Path.Combine(dir.Path, "adapter_model.safetensors")))
        {
            Assert.Contains("base_model.model.classifier.weight", file.Tensors.Select(t => t.Name));
            Assert.Contains("base_model.model.classifier.bias", file.Tensors.Select(t => t.Name));
            Assert.DoesNotContain(file.Tensors, t => t.Name.Contains("modules_to_save") || t.Name.Contains("original_module"));
        }
        JsonObject config = JsonNode.Parse(File.ReadAllText(Path.Combine(dir.Path, "adapter_config.json")))!.AsObject();
        Assert.Equal(["classifier", "score"], config["modules_to_save"]!.AsArray().Select(n => n!.GetValue<string>()).ToArray());

        using var loaded = PeftModel.FromPretrained(new TinyClassifier(), dir.Path, catalog);
        using var reloaded = loaded.Forward(x);
        Assert.Equal(0.0, Tensors.MaxAbsDiff(adapted, reloaded));
    }

    [Fact]
    public void Merge_and_unload_puts_the_active_copy_in_place()
    {
        using var catalog = new PluginCatalog(new PluginCatalogOptions { PluginsDirectory = PluginDirs.Installed });
        catalog.Scan();
        var model = new TinyClassifier();
        using var x = torch.randn(4, 8);
        var peft = new PeftModel(model, catalog);
        JsonObject config = Configs.Lora("query");
        config["modules_to_save"] = new JsonArray("classifier");
        peft.AddAdapter("default", config);
        Train(peft, "default");
        using var adapted = peft.Forward(x);

        nn.Module plain = peft.MergeAndUnload();
        using var mergedOut = ((nn.Module<Tensor, Tensor>)plain).forward(x);
        Assert.True(Tensors.MaxAbsDiff(adapted, mergedOut) < 1e-5);
        Assert.DoesNotContain(plain.named_modules(), m => m.name.Contains("modules_to_save") || m.name.Contains("original_module"));
        peft.Dispose();
    }

    [Fact]
    public void Modules_to_save_that_match_nothing_is_a_clear_error_and_nothing_is_applied()
    {
        using var catalog = new PluginCatalog(new PluginCatalogOptions { PluginsDirectory = PluginDirs.Installed });
        catalog.Scan();
        var model = new TinyClassifier();
        using var peft = new PeftModel(model, catalog);
        JsonObject config = Configs.Lora("query");
        config["modules_to_save"] = new JsonArray("lm_head");
        var e = Assert.Throws<ArgumentException>(() => peft.AddAdapter("default", config));
        Assert.Contains("modules_to_save [\"lm_head\"] matched no module", e.Message);
        Assert.Empty(peft.Adapters);
        Assert.DoesNotContain(model.named_modules(), m => m.name.Contains("lora_A"));
    }

    [Fact]
    public void A_model_own_module_type_is_copied_through_ICopyableModule()
    {
        // The Llama's RMSNorm is not a TorchSharp type; it copies itself, so modules_to_save can hold it.
        using var catalog = new PluginCatalog(new PluginCatalogOptions { PluginsDirectory = PluginDirs.Installed });
        catalog.Scan();
        using var dir = new ScratchFolder();
        using nn.Module model = PeftHost.Models.ModelFactory.Load(Path.Combine(PeftHost.Tests.PeftReference.PeftCase.Root, "bases", "llama")).Model;
        JsonObject config = Configs.Lora("q_proj");
        config["modules_to_save"] = new JsonArray("norm");
        using var peft = new PeftModel(model, catalog);
        peft.AddAdapter("default", config);
        Assert.Contains("base_model.model.model.norm.modules_to_save.default.weight", peft.NamedParameters().Where(p => p.Parameter.requires_grad).Select(p => p.Name));
        peft.SavePretrained(dir.Path);
        using var file = SafetensorsFile.Open(Path.Combine(dir.Path, AdapterFolder.WeightsFile));
        Assert.Contains("base_model.model.model.norm.weight", file.Tensors.Select(t => t.Name));
    }
}
