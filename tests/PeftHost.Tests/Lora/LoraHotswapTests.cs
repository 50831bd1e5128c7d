using System.Text.Json.Nodes;
using PeftHost.Engine.Peft;
using PeftHost.Engine.Plugins;
using PeftHost.Tests.Support;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace PeftHost.Tests.Lora;

public class LoraHotswapTests
{
    private static JsonObject Lora(int r, double alpha, params string[] targets)
    {
        JsonObject c = Configs.Lora(targets);
        c["r"] = r;
        c["lora_alpha"] = alpha;
        return c;
    }

    private static string SaveAdapter(PluginCatalog catalog, string root, string name, JsonObject config, int seed)
    {
        using var peft = new PeftModel(new TwoBlocks(seed: 9), catalog);
        torch.manual_seed(seed);
        peft.AddAdapter("default", config);
        string dir = Path.Combine(root, name);
        peft.SavePretrained(dir);
        return dir;
    }

    [Fact]
    public void Hotswap_replaces_weights_in_place_across_ranks_and_matches_a_fresh_load()
    {
        using var catalog = new PluginCatalog(new PluginCatalogOptions { PluginsDirectory = PluginDirs.Installed });
        catalog.Scan();
        using var dir = new ScratchFolder();
        string first = SaveAdapter(catalog, dir.Path, "first", Lora(2, 4, "q_proj", "v_proj"), seed: 11);
        string second = SaveAdapter(catalog, dir.Path, "second", Lora(4, 16, "q_proj", "v_proj"), seed: 12);
        string third = SaveAdapter(catalog, dir.Path, "third", Lora(3, 3, "q_proj"), seed: 13);
        using var x = torch.randn(3, 8);

        using var expectedSecond = PeftModel.FromPretrained(new TwoBlocks(seed: 9), second, catalog).Forward(x);
        using var expectedThird = PeftModel.FromPretrained(new TwoBlocks(seed: 9), third, catalog).Forward(x);

        using var peft = PeftModel.FromPretrained(new TwoBlocks(seed: 9), first, catalog);
        using var before = peft.Forward(x);
        peft.PrepareForHotswap(4);
        using var padded = peft.Forward(x);
        Assert.True(Tensors.MaxAbsDiff(before, padded) < 1e-6); // zero padding changes nothing
        var buffers = peft.NamedParameters().Select(p => p.Parameter.Handle).ToList();

        peft.LoadAdapter(second, "default", hotswap: true);
        using var afterSecond = peft.Forward(x);
        Assert.True(Tensors.MaxAbsDiff(expectedSecond, afterSecond) < 1e-5);

        peft.LoadAdapter(third, "default", hotswap: true); // rank 3 into rank-4 buffers; v_proj not targeted: zeroed
        using var afterThird = peft.Forward(x);
        Assert.True(Tensors.MaxAbsDiff(expectedThird, afterThird) < 1e-5);
        Assert.Equal(buffers, peft.NamedParameters().Select(p => p.Parameter.Handle).ToList()); // the same tensors, no new ones
        Assert.Equal(["default"], peft.Adapters);
    }

    [Fact]
    public void Padded_buffers_are_saved_at_the_adapters_rank_and_stay_prepared_across_a_plugin_reload()
    {
        using ScratchFolder plugins = PluginDirs.Scratch("lora");
        string loraFolder = Path.Combine(plugins.Path, "lora");
        using var catalog = new PluginCatalog(new PluginCatalogOptions { PluginsDirectory = plugins.Path, HotReload = false });
        catalog.Scan();
        using var dir = new ScratchFolder();
        string third = SaveAdapter(catalog, dir.Path, "third", Lora(3, 3, "q_proj", "v_proj"), seed: 13);
        string second = SaveAdapter(catalog, dir.Path, "second", Lora(4, 16, "q_proj", "v_proj"), seed: 12);
        using var x = torch.randn(3, 8);
        using var expectedSecond = PeftModel.FromPretrained(new TwoBlocks(seed: 9), second, catalog).Forward(x);

        using var peft = PeftModel.FromPretrained(new TwoBlocks(seed: 9), third, catalog);
        peft.PrepareForHotswap(4);
        using var before = peft.Forward(x);
        // Saved as PEFT would read it: A [r, in] and B [out, r] with the config's r = 3, not the padded 4.
        string saved = Path.Combine(dir.Path, "saved");
        peft.SavePretrained(saved);
        JsonObject header = SafetensorsHeader(Path.Combine(saved, "adapter_model.safetensors"));
        Assert.Equal("[3,8]", header["base_model.model.layers.0.q_proj.lora_A.weight"]!["shape"]!.ToJsonString());
        Assert.Equal("[8,3]", header["base_model.model.layers.0.q_proj.lora_B.weight"]!["shape"]!.ToJsonString());

        // A reload hands the adapter over at rank 3 and the new version pads it again: a rank-4 hotswap still fits.
        PluginDirs.Copy(PluginDirs.LoraAlt, loraFolder);
        ReloadResult r = catalog.Reload(loraFolder);
        Assert.True(r.Succeeded, r.Error);
        using var afterReload = peft.Forward(x);
        Assert.True(Tensors.MaxAbsDiff(before, afterReload) < 1e-6);
        peft.LoadAdapter(second, "default", hotswap: true);
        using var afterSecond = peft.Forward(x);
        Assert.True(Tensors.MaxAbsDiff(expectedSecond, afterSecond) < 1e-5);
    }

    // The header of a safetensors file, read by its spec (8-byte little-endian length, then JSON), not by our reader.
    private static JsonObject SafetensorsHeader(string path)
    {
        byte[] bytes = File.ReadAllBytes(path);
        long length = BitConverter.ToInt64(bytes, 0);
        return JsonNode.Parse(bytes.AsSpan(8, (int)length))!.AsObject();
    }

    [Fact]
    public void Hotswap_refuses_an_adapter_targeting_other_modules_and_changes_nothing()
    {
        using var catalog = new PluginCatalog(new PluginCatalogOptions { PluginsDirectory = PluginDirs.Installed });
        catalog.Scan();
        using var dir = new ScratchFolder();
        string first = SaveAdapter(catalog, dir.Path, "first", Lora(2, 4, "q_proj"), seed: 11);
        string wider = SaveAdapter(catalog, dir.Path, "wider", Lora(2, 4, "q_proj", "v_proj"), seed: 12);
        string bigger = SaveAdapter(catalog, dir.Path, "bigger", Lora(8, 4, "q_proj"), seed: 13);
        using var x = torch.randn(3, 8);
        using var peft = PeftModel.FromPretrained(new TwoBlocks(seed: 9), first, catalog);
        using var before = peft.Forward(x);

        var e = Assert.Throws<InvalidDataException>(() => peft.LoadAdapter(wider, "default", hotswap: true));
        Assert.Contains("targets 'layers.0.v_proj', which the loaded adapter does not", e.Message);
        e = Assert.Throws<InvalidDataException>(() => peft.LoadAdapter(bigger, "default", hotswap: true));
        Assert.Contains("has rank 8 but the loaded buffers hold rank 2", e.Message);
        using var after = peft.Forward(x);
        Assert.Equal(0.0, Tensors.MaxAbsDiff(before, after));
    }

    [Fact]
    public void Weighted_linear_and_svd_combinations_follow_peft()
    {
        using var catalog = new PluginCatalog(new PluginCatalogOptions { PluginsDirectory = PluginDirs.Installed });
        catalog.Scan();
        using var peft = new PeftModel(new TwoBlocks(seed: 9), catalog);
        peft.AddAdapter("a", Lora(2, 4, "q_proj"));
        peft.AddAdapter("b", Lora(2, 8, "q_proj", "v_proj"));
        peft.AddWeightedAdapter(["a", "b"], [0.7, 0.3], "lin", "linear");
        peft.AddWeightedAdapter(["a", "b"], [0.7, 0.3], "svd", "svd");
        using var a = peft.ExportAdapter("a");
        using var b = peft.ExportAdapter("b");
        using var lin = peft.ExportAdapter("lin");
        using var svd = peft.ExportAdapter("svd");
        double sa = 4.0 / 2, sb = 8.0 / 2; // alpha / r
        const string q = "layers.0.q_proj", v = "layers.1.v_proj";

        // linear: A = Σ √(w·s)·Aᵢ, B = Σ √(w·s)·Bᵢ over the adapters present in the module.
        using var expectedA = a.Tensors[q + ".lora_A.weight"] * Math.Sqrt(0.7 * sa) + b.Tensors[q + ".lora_A.weight"] * Math.Sqrt(0.3 * sb);
        Assert.True(Tensors.MaxAbsDiff(expectedA, lin.Tensors[q + ".lora_A.weight"]) < 1e-6);
        using var expectedVB = b.Tensors[v + ".lora_B.weight"] * Math.Sqrt(0.3 * sb);
        Assert.True(Tensors.MaxAbsDiff(expectedVB, lin.Tensors[v + ".lora_B.weight"]) < 1e-6);
        Assert.Equal(2, lin.Config["r"]!.GetValue<int>());
        Assert.Equal(2.0, double.Parse(lin.Config["lora_alpha"]!.ToJsonString(), System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(["q_proj", "v_proj"], lin.Config["target_modules"]!.AsArray().Select(n => n!.GetValue<string>()).ToArray());

        // svd: ΔW = Σ w·s·(s·B·A) (PEFT scales twice), B·A of the result = its best rank-2 approximation.
        using var delta = a.Tensors[q + ".lora_B.weight"].matmul(a.Tensors[q + ".lora_A.weight"]) * (0.7 * sa * sa)
                        + b.Tensors[q + ".lora_B.weight"].matmul(b.Tensors[q + ".lora_A.weight"]) * (0.3 * sb * sb);
        var (u, s, vh) = torch.linalg.svd(delta, fullMatrices: true);
        using var best = u.narrow(1, 0, 2).matmul(torch.diag(s.narrow(0, 0, 2))).matmul(vh.narrow(0, 0, 2));
        using var product = svd.Tensors[q + ".lora_B.weight"].matmul(svd.Tensors[q + ".lora_A.weight"]);
        Assert.True(Tensors.MaxAbsDiff(best, product) < 1e-5);

        var e = Assert.Throws<ArgumentException>(() => peft.AddWeightedAdapter(["a", "lin"], [1, 1], "bad", "cat_or_what"));
        Assert.Contains("Invalid combination_type 'cat_or_what'", e.Message);
    }
}
