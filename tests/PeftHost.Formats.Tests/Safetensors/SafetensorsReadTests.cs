using PeftHost.Formats.Safetensors;
using PeftHost.Formats.Tests.Support;
using Xunit;

namespace PeftHost.Formats.Tests.Safetensors;

/// <summary>Reading files written by another tool (the conformance samples).</summary>
public class SafetensorsReadTests
{
    [Fact]
    public void Reads_the_conformance_model_header_and_metadata()
    {
        using var file = SafetensorsFile.Open(Path.Combine(Conformance.Case("base_llama"), "model.safetensors"));
        Assert.Equal("pt", file.Metadata["format"]);
        SafetensorsTensorInfo embed = file.Info("model.embed_tokens.weight");
        Assert.Equal(SafetensorsDType.F32, embed.DType);
        Assert.Equal([256L, 64L], embed.Shape);
        Assert.Equal([64L, 128L], file.Info("model.layers.0.mlp.down_proj.weight").Shape);
        Assert.Equal([32L, 64L], file.Info("model.layers.1.self_attn.k_proj.weight").Shape); // 2 KV heads x 16
        Assert.Equal(2 + 2 * 9 + 1, file.Tensors.Count); // embed, head, norm + 9 per layer
        Assert.Equal(file.DataLength, file.Tensors.Sum(t => t.ByteLength));
    }

    [Fact]
    public void Reads_reference_values_at_their_offsets()
    {
        using var file = SafetensorsFile.Open(Path.Combine(Conformance.Case("base_bert"), "logits.safetensors"));
        float[] logits = file.ReadSingles("logits");
        Assert.Equal([2L, 2L], file.Info("logits").Shape);
        // The same four floats Python's struct module reads after the header.
        Assert.Equal([0.09218613f, 0.37636676f, 0.5490079f, 0.32361466f], logits);
    }

    [Fact]
    public void A_folder_opens_through_model_safetensors()
    {
        using var ckpt = SafetensorsCheckpoint.Open(Conformance.Case("base_gpt2"));
        Assert.EndsWith("model.safetensors", ckpt.Source);
        Assert.Contains("transformer.h.0.attn.c_attn.weight", ckpt.Names);
        Assert.Equal([64L, 192L], ckpt.Info("transformer.h.0.attn.c_attn.weight").Shape); // Conv1D: in x out
    }
}
