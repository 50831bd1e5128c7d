using System.Text.Json.Nodes;
using PeftHost.Abstractions.Layers;
using PeftHost.Engine.Export;
using PeftHost.Engine.Inference;
using PeftHost.Engine.Peft;
using PeftHost.Engine.Plugins;
using PeftHost.Formats.BitsAndBytes;
using PeftHost.Formats.Gguf;
using PeftHost.Models;
using PeftHost.Models.Quantization;
using PeftHost.Tests.PeftReference;
using PeftHost.Tests.Support;
using TorchSharp;
using TorchSharp.Modules;
using Xunit;
using static TorchSharp.torch;

namespace PeftHost.Tests.Quantization;

/// <summary>
/// Merging an adapter into a quantized base, as PEFT merges LoRA into bitsandbytes layers: the merged layer is the
/// quantization (same settings) of the dequantized weight plus ΔW, ΔW taken from the same adapter merged into the
/// float32 model of dequantized weights; `merge` from a quantized folder writes float32, or bitsandbytes' layout on request.
/// </summary>
public sealed class QuantizedMergeTests
{
    private const string Model = "llama_nf4_double_quant";


    private static string Quantized(string model) => Path.Combine(BnbCases.Model(model), "quantized");

    // An adapter made on the quantized base, moved away from its identity initialisation, saved.
    private static string MakeAdapter(string model, PluginCatalog catalog, string folder, string method = "lora")
    {
        using nn.Module quantized = ModelFactory.Load(Quantized(model)).Model;
        using var peft = new PeftModel(quantized, catalog);
        manual_seed(5);
        peft.AddAdapter("default", QuantizedBaseAdapterTests.Config(model, method));
        using (no_grad())
            foreach ((_, Parameter p) in peft.NamedParameters().Where(p => p.Parameter.requires_grad))
                using (Tensor noise = randn_like(p).mul_(0.2)) p.add_(noise);
        peft.SavePretrained(folder);
        return folder;
    }

    // The same adapter merged into the float32 model of dequantized weights: the weights the quantized merge must round.
    private static Dictionary<string, Tensor> FloatMerged(string model, string adapter, PluginCatalog catalog)
    {
        nn.Module twin = ModelFactory.LoadDequantized(Quantized(model)).Model;
        using var peft = PeftModel.FromPretrained(twin, adapter, catalog);
        nn.Module merged = peft.MergeAndUnload();
        var weights = merged.named_modules().Where(m => m.module is Linear).ToDictionary(m => m.name, m => ((Linear)m.module).weight!.detach().clone());
        merged.Dispose();
        return weights;
    }

    private static QuantizedLinear Requantized(Tensor weight, QuantizedLinear like) => like switch
    {
        Linear4bit l => Linear4bit.Quantize(weight, null, l.QuantType, l.DoubleQuant, ScalarType.Float32),
        _ => Linear8bit.Quantize(weight, null, ScalarType.Float32),
    };

    private static byte[] Codes(QuantizedLinear layer) => layer switch
    {
        Linear4bit l => l.PackedCodes(),
        Linear8bit l => [.. l.Rows().Select(v => (byte)v)],
        _ => throw new ArgumentException(layer.GetType().Name),
    };

    [Theory]
    [InlineData("llama_nf4_double_quant", "lora")]
    [InlineData("llama_int8", "lora")]
    [InlineData("llama_nf4_double_quant", "dora")]
    [InlineData("llama_nf4_double_quant", "ia3")]
    [InlineData("llama_int8", "adalora")]
    public void Merging_into_a_quantized_base_requantizes_the_dequantized_weight_plus_the_delta(string model, string method)
    {
        using var dir = new ScratchFolder();
        using PluginCatalog catalog = PeftCase.Catalog();
        string adapter = MakeAdapter(model, catalog, Path.Combine(dir.Path, "adapter"), method);
        Dictionary<string, Tensor> expected = FloatMerged(model, adapter, catalog);
        using Tensor ids = BnbCases.InputIds(model);

        using nn.Module quantized = ModelFactory.Load(Quantized(model)).Model;
        using var peft = PeftModel.FromPretrained(quantized, adapter, catalog);
        using Tensor unmerged = peft.Run(() => { using (no_grad()) return ((ICausalLM)quantized).Forward(ids); });
        double effect;
        using (peft.DisableAdapter())
        using (Tensor plain = peft.Run(() => { using (no_grad()) return ((ICausalLM)quantized).Forward(ids); }))
            effect = Tensors.MaxAbsDiff(unmerged, plain);
        var before = quantized.named_modules().Where(m => m.module is QuantizedLinear).ToDictionary(m => m.name, m => Codes((QuantizedLinear)m.module));
        peft.Merge(safeMerge: true);
        int targets = 0;
        foreach ((string path, nn.Module m) in quantized.named_modules())
        {
            // The wrapped layers: LoRA's targets hold the quantized layer as base_layer.
            if (m is not QuantizedLinear layer || !path.EndsWith(".base_layer", StringComparison.Ordinal)) continue;
            targets++;
            using QuantizedLinear reference = Requantized(expected[path[..^".base_layer".Length]], layer);
            Assert.Equal(Codes(reference), Codes(layer));
            Assert.NotEqual(before[path], Codes(layer));
        }
        Assert.Equal(6, targets);
        // Merged logits carry the requantization's rounding of W + ΔW: not the unmerged ones, off by what quantizing the
        // base itself costs (the lab's float32 base against its dequantized model), not by the adapter's effect.
        using Tensor merged = peft.Run(() => { using (no_grad()) return ((ICausalLM)quantized).Forward(ids); });
        double error = Tensors.MaxAbsDiff(merged, unmerged);
        double quantization;
        using (Tensor full = BnbCases.Logits(model, "base"))
        using (Tensor decoded = BnbCases.Logits(model, "quantized"))
            quantization = Tensors.MaxAbsDiff(full, decoded);
        TestContext.Current.TestOutputHelper?.WriteLine(
            $"{model} {method}: max |merged - unmerged| logits = {error:G3}; quantizing the base moves them by {quantization:G3}, the adapter by {effect:G3}");
        Assert.True(error > 0 && error < 2 * quantization, $"merged - unmerged {error}, base quantization error {quantization}, adapter effect {effect}");
        foreach (Tensor t in expected.Values) t.Dispose();
    }

    [Fact]
    public void Merge_from_a_quantized_folder_writes_float32_or_bitsandbytes_layout_on_request()
    {
        using var dir = new ScratchFolder();
        using PluginCatalog catalog = PeftCase.Catalog();
        string adapter = MakeAdapter(Model, catalog, Path.Combine(dir.Path, "adapter"));
        using Tensor ids = BnbCases.InputIds(Model);

        // Float output: the update added to the decoded base exactly; the folder loads as a plain float model.
        string floatOut = Path.Combine(dir.Path, "float");
        MergedModelWriter.Result result = MergedModelWriter.Merge(Quantized(Model), [AdapterSpec.FromFolder(adapter, 0)], floatOut, PluginDirs.Installed);
        Assert.Equal(ScalarType.Float32, result.DType);
        var config = (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(floatOut, "config.json")))!;
        Assert.False(config.ContainsKey("quantization_config"));
        using (nn.Module twin = ModelFactory.LoadDequantized(Quantized(Model)).Model)
        using (var peft = PeftModel.FromPretrained(twin, adapter, catalog))
        using (Tensor expected = peft.Run(() => { using (no_grad()) return ((ICausalLM)twin).Forward(ids); }))
        using (nn.Module written = ModelFactory.Load(floatOut).Model)
        using (no_grad())
        using (Tensor logits = ((ICausalLM)written).Forward(ids))
        {
            Assert.DoesNotContain(written.modules(), m => m is QuantizedLinear);
            Assert.True(Tensors.MaxAbsDiff(logits, expected) < 1e-4, $"{Tensors.MaxAbsDiff(logits, expected)}");
        }

        // --quantize nf4 with double quantization: the merged weights quantized, in the layout transformers saves.
        string nf4Out = Path.Combine(dir.Path, "nf4");
        var nf4 = new BitsAndBytesConfig { LoadIn4Bit = true, QuantType = FourBitType.Nf4, UseDoubleQuant = true };
        MergedModelWriter.Merge(Quantized(Model), [AdapterSpec.FromFolder(adapter, 0)], nf4Out, PluginDirs.Installed, quantize: nf4);
        var saved = (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(nf4Out, "config.json")))!;
        Assert.Equal("nf4", saved["quantization_config"]?["bnb_4bit_quant_type"]?.GetValue<string>());
        using nn.Module reloaded = ModelFactory.Load(nf4Out).Model;
        using nn.Module fromFloat = ModelFactory.Load(floatOut).Model;
        var floatLayers = fromFloat.named_modules().Where(m => m.module is Linear).ToDictionary(m => m.name, m => (Linear)m.module);
        int layers = 0;
        foreach ((string path, nn.Module m) in reloaded.named_modules())
        {
            if (m is not Linear4bit layer) continue;
            layers++;
            using Linear4bit reference = Linear4bit.Quantize(floatLayers[path].weight!, null, FourBitType.Nf4, doubleQuant: true, ScalarType.Float32);
            Assert.Equal(reference.PackedCodes(), layer.PackedCodes());
        }
        Assert.Equal(14, layers);
        Assert.Throws<ArgumentException>(() => MergedModelWriter.Merge(Quantized(Model), [AdapterSpec.FromFolder(adapter, 0)], Path.Combine(dir.Path, "x"), PluginDirs.Installed,
            dtype: ScalarType.BFloat16, quantize: nf4));
    }

    /// <summary>
    /// A QLoRA adapter merged (or exported) from the float folder with the base's quantization asked for: the base is
    /// quantized as the adapter was trained on it and decoded, so the result is the merge from the folder bitsandbytes'
    /// algorithm quantized in the lab (the same numbers), not the merge into the float weights.
    /// </summary>
    [Fact]
    public void Merge_and_export_with_load_in_4bit_start_from_the_base_the_adapter_was_trained_on()
    {
        using var dir = new ScratchFolder();
        using PluginCatalog catalog = PeftCase.Catalog();
        string adapter = MakeAdapter(Model, catalog, Path.Combine(dir.Path, "adapter"));
        string floatBase = Path.Combine(BnbCases.Model(Model), "base");
        var nf4 = new BitsAndBytesConfig { LoadIn4Bit = true, QuantType = FourBitType.Nf4, UseDoubleQuant = true };
        using Tensor ids = BnbCases.InputIds(Model);
        Tensor Logits(string folder)
        {
            using nn.Module m = ModelFactory.Load(folder).Model;
            using (no_grad()) return ((ICausalLM)m).Forward(ids);
        }

        string fromQuantized = Path.Combine(dir.Path, "from-quantized"), fromFloat = Path.Combine(dir.Path, "from-float"), plain = Path.Combine(dir.Path, "plain");
        MergedModelWriter.Merge(Quantized(Model), [AdapterSpec.FromFolder(adapter, 0)], fromQuantized, PluginDirs.Installed);
        (int code, _, string stderr) = Cli.Run(["merge", "--model", floatBase, "--adapter", adapter, "--out", fromFloat, "--load-in-4bit", "--double-quant"]);
        Assert.True(code == 0, stderr);
        MergedModelWriter.Merge(floatBase, [AdapterSpec.FromFolder(adapter, 0)], plain, PluginDirs.Installed);
        using Tensor expected = Logits(fromQuantized), merged = Logits(fromFloat), intoFloat = Logits(plain);
        Assert.True(Tensors.MaxAbsDiff(merged, expected) < 1e-5, $"merge --load-in-4bit vs the lab-quantized folder's merge: {Tensors.MaxAbsDiff(merged, expected)}");
        Assert.True(Tensors.MaxAbsDiff(intoFloat, expected) > 1e-3, "the float base gives other numbers (the base's quantization matters)");

        // export --format gguf decodes the same base before the merge: its f32 tensors equal the quantized folder's export.
        string a = Path.Combine(dir.Path, "a.gguf"), b = Path.Combine(dir.Path, "b.gguf");
        LlamaGgufExporter.Export(Quantized(Model), [AdapterSpec.FromFolder(adapter, 0)], PluginDirs.Installed, GgmlType.F32, a);
        LlamaGgufExporter.Export(floatBase, [AdapterSpec.FromFolder(adapter, 0)], PluginDirs.Installed, GgmlType.F32, b, baseQuantization: nf4);
        using GgufFile ga = GgufFile.Open(a), gb = GgufFile.Open(b);
        foreach (GgufTensorInfo t in ga.Tensors)
        {
            float[] x = ga.ReadTensorFloats(t.Name), y = gb.ReadTensorFloats(t.Name);
            Assert.True(x.Zip(y).All(p => Math.Abs(p.First - p.Second) < 1e-6), $"GGUF tensor {t.Name} differs");
        }
    }
}
