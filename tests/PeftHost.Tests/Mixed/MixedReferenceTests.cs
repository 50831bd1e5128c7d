using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using PeftHost.Abstractions.Layers;
using PeftHost.Engine.Peft;
using PeftHost.Engine.Plugins;
using PeftHost.Formats.Safetensors;
using PeftHost.Models;
using PeftHost.Models.Checkpoint;
using PeftHost.Tests.PeftReference;
using PeftHost.Tests.Support;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace PeftHost.Tests.Mixed;

/// <summary>
/// Adapters of different methods active together on one model, against PEFT 0.13.2's <c>PeftMixedModel</c>
/// (the mixed_* cases): "one" loaded first, "two" second, both active; on a module both target, the second
/// method's layer wraps the first's, as PEFT nests them (meta.json's <c>wrapping</c>).
/// </summary>
public partial class MixedReferenceTests
{
    public static TheoryData<string> Cases => new()
    {
        "mixed_lora_loha_separate",
        "mixed_lora_loha_same",
        "mixed_lora_lokr_same",
        "mixed_lora_oft_same",
        "mixed_oft_lora_same",
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Both_active_match_peft_unmerged_and_merged_and_each_alone(string caseName)
    {
        var c = new PeftCase(caseName);
        using PluginCatalog catalog = PeftCase.Catalog();
        using ModelInputs inputs = c.Inputs();
        using nn.Module model = c.LoadBase();
        using PeftModel peft = PeftModel.FromPretrained(model, Path.Combine(c.Folder, "adapter_one"), catalog, adapterName: "one");
        peft.LoadAdapter(Path.Combine(c.Folder, "adapter_two"), "two");
        peft.SetActiveAdapters("one", "two");

        AssertWrapsAsPeft(c, model);
        using (Tensor logits = PeftCase.CausalLogits(peft, inputs)) c.AssertLogits(logits, "logits_mixed");
        peft.SetActiveAdapters("one");
        using (Tensor logits = PeftCase.CausalLogits(peft, inputs)) c.AssertLogits(logits, "logits_one");
        peft.SetActiveAdapters("two");
        using (Tensor logits = PeftCase.CausalLogits(peft, inputs)) c.AssertLogits(logits, "logits_two");
        peft.SetActiveAdapters("one", "two");
        using (peft.DisableAdapter())
        using (Tensor logits = PeftCase.CausalLogits(peft, inputs)) c.AssertLogits(logits, "logits_base");

        // Merged inner first, as the forward applies them (PEFT's merge_recursively); unmerged, the layers are back.
        peft.Merge();
        using (Tensor logits = PeftCase.CausalLogits(peft, inputs)) c.AssertLogits(logits, "logits_merged");
        peft.Unmerge();
        using (Tensor logits = PeftCase.CausalLogits(peft, inputs)) c.AssertLogits(logits, "logits_mixed");
        peft.MergeAndUnload();
        Assert.Empty(model.modules().OfType<TunerLayer>());
        using (no_grad())
        using (Tensor logits = ((ICausalLM)model).Forward(inputs.InputIds))
            c.AssertLogits(logits, "logits_merged");
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Each_adapter_saves_to_its_own_folder_like_peft_and_reloads_alone(string caseName)
    {
        var c = new PeftCase(caseName);
        using PluginCatalog catalog = PeftCase.Catalog();
        using ModelInputs inputs = c.Inputs();
        using var saved = new ScratchFolder();
        using (nn.Module model = c.LoadBase())
        using (PeftModel peft = PeftModel.FromPretrained(model, Path.Combine(c.Folder, "adapter_one"), catalog, adapterName: "one"))
        {
            peft.LoadAdapter(Path.Combine(c.Folder, "adapter_two"), "two");
            peft.SetActiveAdapters("one", "two");
            peft.SavePretrained(saved.Path);
        }

        foreach (string name in new[] { "one", "two" })
        {
            // No ".base_layer" from the nesting: the same keys, shapes and values as PEFT's single-adapter file.
            string ours = Path.Combine(saved.Path, name);
            AssertSameFile(caseName, Path.Combine(c.Folder, "adapter_" + name, AdapterFolder.WeightsFile), Path.Combine(ours, AdapterFolder.WeightsFile));
            JsonObject config = JsonNode.Parse(File.ReadAllText(Path.Combine(ours, AdapterFolder.ConfigFile)))!.AsObject();
            JsonObject theirs = JsonNode.Parse(File.ReadAllText(Path.Combine(c.Folder, "adapter_" + name, AdapterFolder.ConfigFile)))!.AsObject();
            Assert.Equal(theirs["peft_type"]!.GetValue<string>(), config["peft_type"]!.GetValue<string>());

            using nn.Module model = c.LoadBase();
            using PeftModel alone = PeftModel.FromPretrained(model, ours, catalog);
            using Tensor logits = PeftCase.CausalLogits(alone, inputs);
            c.AssertLogits(logits, "logits_" + name);
        }

        // Both saved folders loaded together again: the mixed numbers.
        using (nn.Module model = c.LoadBase())
        using (PeftModel again = PeftModel.FromPretrained(model, Path.Combine(saved.Path, "one"), catalog, adapterName: "one"))
        {
            again.LoadAdapter(Path.Combine(saved.Path, "two"), "two");
            again.SetActiveAdapters("one", "two");
            using Tensor logits = PeftCase.CausalLogits(again, inputs);
            c.AssertLogits(logits, "logits_mixed");
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Deleting_either_adapter_leaves_the_other_alone_and_then_the_base_exactly(string caseName)
    {
        var c = new PeftCase(caseName);
        using PluginCatalog catalog = PeftCase.Catalog();
        using ModelInputs inputs = c.Inputs();
        foreach ((string first, string kept) in new[] { ("one", "two"), ("two", "one") })
        {
            using nn.Module model = c.LoadBase();
            var before = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());
            using PeftModel peft = PeftModel.FromPretrained(model, Path.Combine(c.Folder, "adapter_one"), catalog, adapterName: "one");
            peft.LoadAdapter(Path.Combine(c.Folder, "adapter_two"), "two");
            peft.SetActiveAdapters("one", "two");

            // The inner layer is taken out of the chain under the outer one (or the outer one off the inner).
            peft.DeleteAdapter(first);
            using (Tensor logits = PeftCase.CausalLogits(peft, inputs)) c.AssertLogits(logits, "logits_" + kept);
            peft.DeleteAdapter(kept);
            Assert.Empty(model.modules().OfType<TunerLayer>());
            Assert.Equal(before.Keys.Order(StringComparer.Ordinal), model.named_parameters().Select(p => p.name).Order(StringComparer.Ordinal));
            foreach (var (name, p) in model.named_parameters())
                Assert.True(Tensors.MaxAbsDiff(before[name], p) == 0, $"{caseName}: base parameter '{name}' changed");
            using (Tensor logits = PeftCase.CausalLogits(peft, inputs)) c.AssertLogits(logits, "logits_base");
            foreach (Tensor t in before.Values) t.Dispose();
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void A_mixed_batch_routes_each_row_through_the_whole_chain(string caseName)
    {
        var c = new PeftCase(caseName);
        using PluginCatalog catalog = PeftCase.Catalog();
        using ModelInputs inputs = c.Inputs();
        using nn.Module model = c.LoadBase();
        using PeftModel peft = PeftModel.FromPretrained(model, Path.Combine(c.Folder, "adapter_one"), catalog, adapterName: "one");
        peft.LoadAdapter(Path.Combine(c.Folder, "adapter_two"), "two");
        var causal = (ICausalLM)model;
        // Row 0 by adapter "one" alone, row 1 by "two" alone: PEFT's single-adapter logits of those rows.
        using Tensor one = c.Logits("logits_one"), two = c.Logits("logits_two");
        using Tensor expected = cat([one.narrow(0, 0, 1), two.narrow(0, 1, 1)], 0);
        using Tensor routed = peft.Run(() => { using (no_grad()) return causal.Forward(inputs.InputIds); }, ["one", "two"]);
        double diff = Tensors.MaxAbsDiff(routed, expected);
        Assert.True(diff < PeftCase.Tolerance, $"{caseName}: routed rows differ from PEFT's single-adapter logits by {diff}");
    }

    // meta.json's wrapping: per module, the chain outermost first, e.g. "oft.Linear['two']", "lora.Linear['one']".
    private static void AssertWrapsAsPeft(PeftCase c, nn.Module model)
    {
        var modules = model.named_modules().ToDictionary(m => m.name, m => m.module);
        foreach ((string path, JsonNode? chain) in c.Meta["wrapping"]!.AsObject())
        {
            var expected = chain!.AsArray().Select(n => LayerName().Match(n!.GetValue<string>()).Groups[1].Value).ToList();
            var actual = new List<string>();
            for (nn.Module m = modules[path]; m is TunerLayer layer; m = layer.BaseLayer)
                actual.Add(string.Join(",", layer.Adapters.Order(StringComparer.Ordinal)));
            Assert.Equal(expected, actual);
            Assert.IsType<TorchSharp.Modules.Linear>(((TunerLayer)modules[path]).GetBaseLayer());
        }
        Assert.Equal(c.Meta["wrapping"]!.AsObject().Count, model.named_modules().Count(m => m.module is TunerLayer && !m.name.EndsWith("." + TunerLayer.BaseLayerName, StringComparison.Ordinal)));
    }

    [GeneratedRegex(@"\['([^']+)'\]")]
    private static partial Regex LayerName();

    private static void AssertSameFile(string caseName, string expectedFile, string actualFile)
    {
        using var theirs = SafetensorsFile.Open(expectedFile);
        using var ours = SafetensorsFile.Open(actualFile);
        Assert.Equal(theirs.Tensors.Select(t => t.Name).Order(StringComparer.Ordinal), ours.Tensors.Select(t => t.Name).Order(StringComparer.Ordinal));
        foreach (SafetensorsTensorInfo info in theirs.Tensors)
        {
            using Tensor a = TensorBridge.Read(ours, info.Name, ScalarType.Float32);
            using Tensor b = TensorBridge.Read(theirs, info.Name, ScalarType.Float32);
            Assert.Equal(b.shape, a.shape);
            Assert.True(Tensors.MaxAbsDiff(a, b) == 0, $"{caseName}: {info.Name} differs from PEFT's file");
        }
    }
}
