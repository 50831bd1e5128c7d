using PeftHost.Engine.Export;
using PeftHost.Formats.BitsAndBytes;
using PeftHost.Formats.Gguf;
using PeftHost.Models;
using PeftHost.Models.Quantization;
using PeftHost.Tests.Support;
using TorchSharp.Modules;
using Xunit;
using static TorchSharp.torch;

namespace PeftHost.Tests.Quantization;

/// <summary>GGUF export from a folder saved in 4 bits: the weights are decoded (bitsandbytes' dequantize), then written in the requested GGUF type.</summary>
public sealed class QuantizedGgufExportTests
{
    [Fact]
    public void A_4_bit_folder_exports_its_dequantized_weights()
    {
        using var dir = new ScratchFolder();
        string floatDir = Path.Combine(dir.Path, "tiny"), nf4Dir = Path.Combine(dir.Path, "tiny-nf4");
        ModelPresets.Write("llama", "tiny", floatDir, seed: 0);
        var nf4 = new BitsAndBytesConfig { LoadIn4Bit = true, QuantType = FourBitType.Nf4, UseDoubleQuant = true };
        (var config, nn.Module quantized) = ModelFactory.Load(floatDir, ScalarType.Float32, null, nf4);
        using (quantized)
        {
            ModelFactory.Save(quantized, config, nf4Dir);
            foreach (string file in Directory.GetFiles(floatDir).Where(f => !f.EndsWith(".safetensors", StringComparison.Ordinal) && !f.EndsWith("config.json", StringComparison.Ordinal)))
                File.Copy(file, Path.Combine(nf4Dir, Path.GetFileName(file)));
            string path = Path.Combine(dir.Path, "nf4.gguf");
            LlamaGgufExporter.Build(nf4Dir, [], PluginDirs.Installed, GgmlType.F32, out _).Write(path);
            using GgufFile gguf = GgufFile.Open(path);
            // v_proj: llama.cpp permutes q and k rows for its rotary layout, v is written as it is.
            var q = (Linear4bit)quantized.named_modules().First(m => m.name == "model.layers.0.self_attn.v_proj").module;
            using Tensor decoded = q.Dequantize(ScalarType.Float32).contiguous();
            Assert.Equal(decoded.data<float>().ToArray(), gguf.ReadTensorFloats("blk.0.attn_v.weight"));
            var head = (Linear)quantized.named_modules().First(m => m.name == "lm_head").module;
            using Tensor headWeight = head.weight!.detach().contiguous();
            Assert.Equal(headWeight.data<float>().ToArray(), gguf.ReadTensorFloats("output.weight"));
        }
    }
}
