using System.Text.Json.Nodes;
using PeftHost.Engine.Peft;
using PeftHost.Engine.Plugins;
using PeftHost.Models;
using PeftHost.Tests.PeftReference;
using PeftHost.Tests.Support;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace PeftHost.Tests.Methods;

/// <summary>
/// What the PEFT reference cases do not show for LoHa, LoKr, OFT and BOFT: the formulas of docs/methods written
/// out here on the exported tensors (several adapters at once, COFT's projection), the dropouts acting in
/// training mode only, mixed batches, BOFT's trained biases, and a hot reload of each plugin.
/// </summary>
public class LycorisAndOftBehaviourTests
{
    private static JsonObject Config(string peftType, params (string Key, JsonNode? Value)[] fields)
    {
        var json = new JsonObject { ["peft_type"] = peftType, ["target_modules"] = new JsonArray("linear"), ["init_weights"] = false };
        foreach ((string key, JsonNode? value) in fields) json[key] = value;
        return json;
    }

    private static (Tensor W, Tensor B) BaseWeights(nn.Module model)
    {
        var p = model.named_parameters().ToDictionary(x => x.name, x => x.parameter);
        return (p["linear.weight"].detach().clone(), p["linear.bias"].detach().clone());
    }

    private static Tensor Cayley(Tensor a)
    {
        Tensor s = (a - a.transpose(-1, -2)) * 0.5;
        Tensor eye = torch.eye(a.shape[^1]).expand_as(a);
        return (eye - s).matmul(linalg.inv(eye + s));
    }

    [Fact]
    public void Two_loha_adapters_add_their_hadamard_products()
    {
        using PluginCatalog catalog = PeftCase.Catalog();
        var model = new OneLinear(8, 6);
        (Tensor w, Tensor b) = BaseWeights(model);
        using var peft = new PeftModel(model, catalog);
        peft.AddAdapter("a", Config("LOHA", ("r", 2), ("alpha", 3)));
        peft.AddAdapter("b", Config("LOHA", ("r", 3), ("alpha", 1.5)));
        peft.SetActiveAdapters("a", "b");
        using Tensor x = randn(4, 8);
        Tensor expected = nn.functional.linear(x, w, b);
        foreach ((string name, double scale) in new[] { ("a", 3.0 / 2), ("b", 0.5) })
        {
            using var state = peft.ExportAdapter(name);
            var t = state.Tensors;
            Tensor dw = t["linear.hada_w1_a"].matmul(t["linear.hada_w1_b"]) * t["linear.hada_w2_a"].matmul(t["linear.hada_w2_b"]) * scale;
            expected = expected + nn.functional.linear(x, dw);
        }
        using (no_grad())
        using (Tensor y = peft.Forward(x))
            Assert.True(Tensors.MaxAbsDiff(y, expected) < 1e-5);
    }

    [Fact]
    public void Two_oft_adapters_rotate_in_turn_around_the_bias()
    {
        using PluginCatalog catalog = PeftCase.Catalog();
        var model = new OneLinear(8, 6);
        (Tensor w, Tensor b) = BaseWeights(model);
        using var peft = new PeftModel(model, catalog);
        peft.AddAdapter("a", Config("OFT", ("r", 2)));                          // blocks of 3
        peft.AddAdapter("b", Config("OFT", ("r", 4), ("block_share", true)));   // one block of 2, cropped 8 -> 6
        peft.SetActiveAdapters("a", "b");
        using Tensor x = randn(4, 8);
        Tensor h = nn.functional.linear(x, w);
        foreach ((string name, int r) in new[] { ("a", 2), ("b", 4) })
        {
            using var state = peft.ExportAdapter(name);
            Tensor q = Cayley(state.Tensors["linear.oft_r"]);
            Tensor rotation = block_diag([.. Enumerable.Range(0, r).Select(i => q[q.shape[0] == 1 ? 0 : i])])[..6, ..6];
            h = h.matmul(rotation);
        }
        using (no_grad())
        using (Tensor y = peft.Forward(x))
            Assert.True(Tensors.MaxAbsDiff(y, h + b) < 1e-5);
    }

    [Fact]
    public void Coft_projects_oft_r_onto_its_ball_in_place_on_forward()
    {
        using PluginCatalog catalog = PeftCase.Catalog();
        var model = new OneLinear(8, 6);
        (Tensor w, Tensor b) = BaseWeights(model);
        using var peft = new PeftModel(model, catalog);
        peft.AddAdapter("default", Config("OFT", ("r", 2), ("coft", true), ("eps", 0.01)));
        Tensor before = peft.ExportAdapter("default").Tensors["linear.oft_r"];
        // docs/methods/oft.md: radius eps * b^2 / sqrt(n) = 0.01 * 9 / sqrt(2); blocks outside are scaled onto it.
        double radius = 0.01 * 9 / Math.Sqrt(2);
        Tensor norms = before.flatten(1).norm(1).unsqueeze(-1).unsqueeze(-1);
        Assert.True(norms.min().item<float>() > radius, "the random blocks start outside the ball");
        Tensor projected = before / norms * radius;
        using Tensor x = randn(4, 8);
        Tensor q = Cayley(projected);
        Tensor expected = nn.functional.linear(x, w).matmul(block_diag(q[0], q[1])) + b;
        using (no_grad())
        using (Tensor y = peft.Forward(x))
            Assert.True(Tensors.MaxAbsDiff(y, expected) < 1e-5);
        Tensor after = peft.ExportAdapter("default").Tensors["linear.oft_r"];
        Assert.True(Tensors.MaxAbsDiff(after, projected) < 1e-6, "the parameter itself is projected, as in PEFT");
    }

    [Fact]
    public void Two_boft_adapters_multiply_rotations_and_scales()
    {
        using PluginCatalog catalog = PeftCase.Catalog();
        var model = new OneLinear(8, 6);
        (Tensor w, Tensor b) = BaseWeights(model);
        using var peft = new PeftModel(model, catalog);
        peft.AddAdapter("a", Config("BOFT", ("boft_block_size", 4)));
        peft.AddAdapter("b", Config("BOFT", ("boft_block_size", 0), ("boft_block_num", 4)));
        peft.SetActiveAdapters("a", "b");
        Tensor rotation = torch.eye(8), scale = ones(6, 1);
        foreach (string name in new[] { "a", "b" })
        {
            using var state = peft.ExportAdapter(name);
            Tensor q = Cayley(state.Tensors["linear.boft_R"][0]);
            rotation = block_diag([.. Enumerable.Range(0, (int)q.shape[0]).Select(i => q[i])]).matmul(rotation);
            scale = state.Tensors["linear.boft_s"] * scale;
        }
        using Tensor x = randn(4, 8);
        Tensor expected = nn.functional.linear(x, rotation.matmul(w.t()).t() * scale, b);
        using (no_grad())
        using (Tensor y = peft.Forward(x))
            Assert.True(Tensors.MaxAbsDiff(y, expected) < 1e-5);
        peft.Merge(safeMerge: true);
        using (no_grad())
        using (Tensor y = peft.Forward(x))
            Assert.True(Tensors.MaxAbsDiff(y, expected) < 1e-5);
    }

    [Theory]
    [InlineData("LOHA", "module_dropout")]
    [InlineData("LOKR", "module_dropout")]
    [InlineData("OFT", "module_dropout")]
    public void Module_dropout_skips_the_adapter_in_training_only(string peftType, string field)
    {
        using PluginCatalog catalog = PeftCase.Catalog();
        var model = new OneLinear(8, 6);
        using var peft = new PeftModel(model, catalog);
        using Tensor x = randn(4, 8);
        using Tensor baseOut = model.forward(x).detach();
        peft.AddAdapter("default", Config(peftType, ("r", 2), (field, 1.0)));
        model.train();
        using (Tensor y = peft.Forward(x)) Assert.Equal(0.0, Tensors.MaxAbsDiff(y, baseOut));
        model.eval();
        using (no_grad())
        using (Tensor y = peft.Forward(x)) Assert.True(Tensors.MaxAbsDiff(y, baseOut) > 1e-3);
    }

    [Theory]
    [InlineData("LOHA")]
    [InlineData("LOKR")]
    public void Rank_dropout_drops_rows_of_the_weight_change_rescaled_by_the_mask_mean(string peftType)
    {
        using PluginCatalog catalog = PeftCase.Catalog();
        var model = new OneLinear(8, 64);
        using var peft = new PeftModel(model, catalog);
        using Tensor x = randn(5, 8);
        using Tensor baseOut = model.forward(x).detach();
        peft.AddAdapter("default", Config(peftType, ("r", 2), ("rank_dropout", 0.5)));
        model.eval();
        Tensor evalDelta;
        using (no_grad()) evalDelta = peft.Forward(x) - baseOut;
        model.train();
        torch.manual_seed(5);
        Tensor trainDelta;
        using (no_grad()) trainDelta = peft.Forward(x) - baseOut;
        // Each output feature is either dropped (0) or kept and multiplied by out / kept (the mask's mean, as PEFT).
        Tensor kept = trainDelta.abs().sum(0L).gt(1e-6);
        long keptCount = kept.sum().item<long>();
        Assert.InRange(keptCount, 1, 63);
        Tensor expected = evalDelta * kept.to(ScalarType.Float32) * (64.0 / keptCount);
        double dropDiff = Tensors.MaxAbsDiff(trainDelta, expected);
        Assert.True(dropDiff < 1e-4, $"kept {keptCount} of 64: max diff {dropDiff}, largest change {evalDelta.abs().max().item<float>()}");
        model.eval();
        using (no_grad())
        using (Tensor y = peft.Forward(x)) Assert.Equal(0.0, Tensors.MaxAbsDiff(y - baseOut, evalDelta));
    }

    [Fact]
    public void Boft_dropout_replaces_blocks_by_the_identity_in_training_only()
    {
        using PluginCatalog catalog = PeftCase.Catalog();
        var model = new OneLinear(8, 6);
        (Tensor w, Tensor b) = BaseWeights(model);
        using var peft = new PeftModel(model, catalog);
        peft.AddAdapter("default", Config("BOFT", ("boft_block_size", 4), ("boft_dropout", 1.0)));
        Tensor s = peft.ExportAdapter("default").Tensors["linear.boft_s"];
        using Tensor x = randn(4, 8);
        model.train();
        using (Tensor y = peft.Forward(x)) Assert.True(Tensors.MaxAbsDiff(y, nn.functional.linear(x, w * s, b)) < 1e-5);
        model.eval();
        using (no_grad())
        using (Tensor y = peft.Forward(x)) Assert.True(Tensors.MaxAbsDiff(y, nn.functional.linear(x, w * s, b)) > 1e-3);
    }

    [Theory]
    [InlineData("LOHA")]
    [InlineData("LOKR")]
    [InlineData("OFT")]
    [InlineData("BOFT")]
    public void Mixed_batches_route_each_row_to_its_adapter(string peftType)
    {
        using PluginCatalog catalog = PeftCase.Catalog();
        var model = new OneLinear(8, 6);
        using var peft = new PeftModel(model, catalog);
        Tensor baseOut;
        peft.AddAdapter("a", Config(peftType, ("r", 2), ("boft_block_size", 2)));
        peft.AddAdapter("b", Config(peftType, ("r", 3), ("boft_block_size", 4)));
        using Tensor x = randn(3, 8);
        using (no_grad())
        using (peft.DisableAdapter())
            baseOut = peft.Forward(x);
        using (no_grad())
        {
            Tensor mixed = peft.Forward(x, ["a", "__base__", "b"]);
            peft.SetActiveAdapters("a");
            Tensor a = peft.Forward(x);
            peft.SetActiveAdapters("b");
            Tensor bOut = peft.Forward(x);
            Assert.True(Tensors.MaxAbsDiff(mixed[0], a[0]) < 1e-6);
            Assert.True(Tensors.MaxAbsDiff(mixed[1], baseOut[1]) < 1e-6);
            Assert.True(Tensors.MaxAbsDiff(mixed[2], bOut[2]) < 1e-6);
        }
    }

    // bias_saving_0132/meta.json: BOFT on q_proj of the Llama with biases; "all" trains the 14 biases and saves them,
    // "boft_only" trains the 2 adapted layers' biases and (PEFT 0.13.2's quirk) saves none.
    [Theory]
    [InlineData("all", 14, 14)]
    [InlineData("boft_only", 2, 0)]
    public void Boft_bias_trains_and_saves_biases_as_peft(string bias, int trainable, int saved)
    {
        var c = new PeftCase("bias_saving_0132");
        var llamaWithBiases = new PeftCase("oft_llama_bias_odd_r");
        using PluginCatalog catalog = PeftCase.Catalog();
        using ModelInputs inputs = llamaWithBiases.Inputs();
        using var folder = new ScratchFolder();
        var expected = c.Meta["bias_saving"]![$"boft_bias_{bias}"]!;
        Tensor logits;
        using (nn.Module model = llamaWithBiases.LoadBase())
        using (var peft = new PeftModel(model, catalog))
        {
            peft.AddAdapter("default", new JsonObject { ["peft_type"] = "BOFT", ["target_modules"] = new JsonArray("q_proj"), ["boft_block_size"] = 4, ["bias"] = bias });
            var biases = peft.NamedParameters().Where(p => p.Parameter.requires_grad && p.Name.EndsWith("bias", StringComparison.Ordinal)).ToList();
            Assert.Equal(expected["trainable_bias_parameters"]!.GetValue<int>(), biases.Count);
            Assert.Equal(trainable, biases.Count);
            foreach (string example in expected["examples"]!.AsArray().Select(n => n!.GetValue<string>()))
                Assert.Contains(example, biases.Select(p => p.Name));
            using (no_grad()) foreach (var (_, p) in biases) p.add_(0.5);    // as training would
            logits = PeftCase.CausalLogits(peft, inputs);
            peft.SavePretrained(folder.Path);
        }
        using var file = Formats.Safetensors.SafetensorsFile.Open(Path.Combine(folder.Path, AdapterFolder.WeightsFile));
        var savedBiases = file.Tensors.Select(t => t.Name).Where(n => n.EndsWith("bias", StringComparison.Ordinal)).ToList();
        Assert.Equal(saved, savedBiases.Count);
        foreach (string example in expected["saved_examples"]!.AsArray().Select(n => n!.GetValue<string>()))
            Assert.Contains(example, savedBiases);
        using (logits)
        using (nn.Module again = llamaWithBiases.LoadBase())
        using (var loaded = PeftModel.FromPretrained(again, folder.Path, catalog))
        using (Tensor reloaded = PeftCase.CausalLogits(loaded, inputs))
        {
            double diff = Tensors.MaxAbsDiff(reloaded, logits);
            if (bias == "all") Assert.Equal(0.0, diff);
            else Assert.True(diff > 0.1, "boft_only's trained biases are not in the file, as in PEFT 0.13.2");
        }
    }

    [Theory]
    [InlineData("loha", "loha_llama")]
    [InlineData("lokr", "lokr_llama_decompose")]
    [InlineData("oft", "oft_llama_coft")]
    [InlineData("boft", "boft_llama_butterfly")]
    public void A_hot_reload_hands_the_adapter_over_with_identical_numbers(string pluginId, string caseName)
    {
        var c = new PeftCase(caseName);
        using var dir = PluginDirs.Scratch(pluginId);
        using var catalog = new PluginCatalog(new PluginCatalogOptions { PluginsDirectory = dir.Path, HotReload = false });
        catalog.Scan();
        using ModelInputs inputs = c.Inputs();
        using nn.Module model = c.LoadBase();
        using var peft = PeftModel.FromPretrained(model, c.AdapterDir(), catalog);
        using Tensor before = PeftCase.CausalLogits(peft, inputs);
        c.AssertLogits(before, "logits_adapter");

        ReloadResult result = catalog.Reload(Path.Combine(dir.Path, pluginId));
        Assert.True(result.Succeeded, result.Error);
        using (Tensor after = PeftCase.CausalLogits(peft, inputs)) Assert.Equal(0.0, Tensors.MaxAbsDiff(before, after));
        peft.DeleteAdapter("default");
        Assert.Equal(0, catalog.CountLeakedContexts());
    }
}
