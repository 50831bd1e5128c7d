using System.Text.Json.Nodes;
using PeftHost.Engine.Peft;
using PeftHost.Engine.Plugins;
using PeftHost.Formats.Safetensors;
using PeftHost.Tests.Support;
using TorchSharp;
using Xunit;

namespace PeftHost.Tests;

public class AdapterFilesTests
{
    private static PluginCatalog Catalog()
    {
        var catalog = new PluginCatalog(new PluginCatalogOptions { PluginsDirectory = PluginDirs.Installed });
        catalog.Scan();
        return catalog;
    }

    [Fact]
    public void Save_writes_peft_layout_and_load_reproduces_the_numbers_byte_stably()
    {
        using PluginCatalog catalog = Catalog();
        using var dir = new ScratchFolder();
        using var x = torch.randn(3, 8);
        using var peft = new PeftModel(new TwoBlocks(seed: 5), catalog);
        peft.AddAdapter("default", Configs.Lora("q_proj", "v_proj"));
        peft.AddAdapter("other", Configs.Lora("q_proj"));
        using var expected = peft.Forward(x);
        string first = Path.Combine(dir.Path, "first");
        peft.SavePretrained(first);

        Assert.True(File.Exists(Path.Combine(first, "adapter_config.json")));
        Assert.True(File.Exists(Path.Combine(first, "other", "adapter_model.safetensors")));
        using (SafetensorsFile file = SafetensorsFile.Open(Path.Combine(first, "adapter_model.safetensors")))
        {
            Assert.Equal("pt", file.Metadata["format"]);
            Assert.Equal(["base_model.model.layers.0.q_proj.lora_A.weight", "base_model.model.layers.0.q_proj.lora_B.weight",
                          "base_model.model.layers.0.v_proj.lora_A.weight", "base_model.model.layers.0.v_proj.lora_B.weight",
                          "base_model.model.layers.1.q_proj.lora_A.weight", "base_model.model.layers.1.q_proj.lora_B.weight",
                          "base_model.model.layers.1.v_proj.lora_A.weight", "base_model.model.layers.1.v_proj.lora_B.weight"],
                file.Tensors.Select(t => t.Name).Order(StringComparer.Ordinal).ToArray());
            Assert.Equal([2L, 8L], file.Info("base_model.model.layers.0.q_proj.lora_A.weight").Shape);
        }
        string configText = File.ReadAllText(Path.Combine(first, "adapter_config.json"));
        JsonObject config = JsonNode.Parse(configText)!.AsObject();
        Assert.True(config["inference_mode"]!.GetValue<bool>());
        Assert.Equal("LORA", config["peft_type"]!.GetValue<string>());
        Assert.Equal(config.Select(p => p.Key).Order(StringComparer.Ordinal).ToArray(), config.Select(p => p.Key).ToArray()); // sorted, as PEFT writes

        using var restored = PeftModel.FromPretrained(new TwoBlocks(seed: 5), first, catalog);
        restored.LoadAdapter(Path.Combine(first, "other"), "other");
        restored.SetActiveAdapters("default");
        Assert.All(restored.NamedParameters(), p => Assert.False(p.Parameter.requires_grad)); // loaded for inference
        using var actual = restored.Forward(x);
        Assert.Equal(0.0, Tensors.MaxAbsDiff(expected, actual));

        string second = Path.Combine(dir.Path, "second");
        restored.SavePretrained(second);
        foreach (string f in new[] { "adapter_config.json", "adapter_model.safetensors", "other/adapter_config.json", "other/adapter_model.safetensors" })
            Assert.Equal(File.ReadAllBytes(Path.Combine(first, f)), File.ReadAllBytes(Path.Combine(second, f)));
    }

    [Fact]
    public void A_tensor_with_the_wrong_shape_names_it_and_nothing_is_applied()
    {
        using PluginCatalog catalog = Catalog();
        using var dir = new ScratchFolder();
        using (var peft = new PeftModel(new TwoBlocks(hidden: 8), catalog))
        {
            peft.AddAdapter("default", Configs.Lora("q_proj"));
            peft.SavePretrained(dir.Path);
        }
        var model = new TwoBlocks(hidden: 6);
        using var x = torch.randn(2, 6);
        using var baseOut = model.forward(x);
        using var target = new PeftModel(model, catalog);
        var e = Assert.Throws<InvalidDataException>(() => target.LoadAdapter(dir.Path, "default"));
        Assert.Contains("tensor 'layers.0.q_proj.lora_A.weight' has shape [2, 8], the model expects [2, 6]", e.Message);
        Assert.Empty(target.Adapters);
        using var y = target.Forward(x);
        Assert.Equal(0.0, Tensors.MaxAbsDiff(baseOut, y));
    }

    [Fact]
    public void Pickle_only_and_missing_config_are_clear_errors()
    {
        using var dir = new ScratchFolder();
        var e = Assert.Throws<FileNotFoundException>(() => AdapterFolder.Read(dir.Path, "default"));
        Assert.Contains("No adapter_config.json", e.Message);
        File.WriteAllText(Path.Combine(dir.Path, "adapter_config.json"), "{\"peft_type\": \"LORA\"}");
        File.WriteAllBytes(Path.Combine(dir.Path, "adapter_model.bin"), [1, 2, 3]);
        e = Assert.Throws<FileNotFoundException>(() => AdapterFolder.Read(dir.Path, "default"));
        Assert.Contains("pickle", e.Message);
    }

    [Fact]
    public void Unknown_config_fields_round_trip_and_an_unknown_peft_type_is_refused()
    {
        using PluginCatalog catalog = Catalog();
        using var dir = new ScratchFolder();
        using (var peft = new PeftModel(new TwoBlocks(), catalog))
        {
            JsonObject config = Configs.Lora("q_proj");
            config["some_future_field"] = new JsonObject { ["x"] = 1 };
            peft.AddAdapter("default", config);
            peft.SavePretrained(dir.Path);
        }
        JsonObject saved = JsonNode.Parse(File.ReadAllText(Path.Combine(dir.Path, "adapter_config.json")))!.AsObject();
        Assert.Equal(1, saved["some_future_field"]!["x"]!.GetValue<int>());

        saved["peft_type"] = "NO_SUCH_METHOD";
        File.WriteAllText(Path.Combine(dir.Path, "adapter_config.json"), saved.ToJsonString());
        using var target = new PeftModel(new TwoBlocks(), catalog);
        var e = Assert.Throws<KeyNotFoundException>(() => target.LoadAdapter(dir.Path, "default"));
        Assert.Contains("No plugin serves peft_type 'NO_SUCH_METHOD'", e.Message);
        Assert.Empty(target.Adapters);
    }
}
