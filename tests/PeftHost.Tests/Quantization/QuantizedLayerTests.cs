using PeftHost.Abstractions.Layers;
using PeftHost.Formats.BitsAndBytes;
using PeftHost.Formats.Safetensors;
using PeftHost.Models.Quantization;
using PeftHost.Tests.Support;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace PeftHost.Tests.Quantization;

/// <summary>Linear4bit and Linear8bit: storage against bitsandbytes' reference bytes, the forward pass, requantize, dtype moves.</summary>
public sealed class QuantizedLayerTests
{
    private static Tensor FromFile(SafetensorsFile f, string name) => torch.tensor(f.ReadSingles(name), f.Info(name).Shape);

    private static int[] Bits(Tensor t)
    {
        using Tensor c = t.detach().cpu().to(ScalarType.Float32).contiguous();
        return c.data<float>().ToArray().Select(BitConverter.SingleToInt32Bits).ToArray();
    }

    [Theory]
    [InlineData("nf4_double_quant", FourBitType.Nf4, true)]
    [InlineData("fp4_double_quant", FourBitType.Fp4, true)]
    [InlineData("nf4_plain_matrix", FourBitType.Nf4, false)]
    [InlineData("nf4_double_quant_small", FourBitType.Nf4, true)]
    public void Linear4bit_stores_bitsandbytes_bytes_and_dequantizes_them_exactly(string name, FourBitType type, bool dq)
    {
        using SafetensorsFile f = BnbCases.Codec(name);
        using Tensor w = FromFile(f, "input");
        using Linear4bit layer = Linear4bit.Quantize(w, null, type, dq, ScalarType.Float32);
        Assert.Equal(f.Bytes("packed"), layer.PackedCodes());
        if (dq)
        {
            NestedAbsmax nested = layer.NestedState()!;
            Assert.Equal(f.Bytes("absmax"), nested.Codes);
            Assert.Equal(f.ReadSingles("nested_absmax"), nested.Absmax);
        }
        else Assert.Equal(f.ReadSingles("absmax"), layer.AbsmaxValues()!);
        using Tensor expected = FromFile(f, "dequantized");
        using Tensor scales = FromFile(f, "absmax_dequantized");
        using Tensor blockScales = layer.BlockScales();
        Assert.Equal(Bits(scales), Bits(blockScales));
        using Tensor back = layer.Dequantize();
        Assert.Equal(expected.shape, back.shape);
        Assert.Equal(Bits(expected), Bits(back));
        Assert.Equal(System.Text.Encoding.UTF8.GetString(f.Bytes(FourBitQuantState.KeySuffix(type))), System.Text.Encoding.UTF8.GetString(layer.QuantState.ToJsonBytes()));
    }

    [Theory]
    [InlineData("int8_hand")]
    [InlineData("int8_random")]
    public void Linear8bit_stores_cb_and_scb_and_dequantizes_exactly(string name)
    {
        using SafetensorsFile f = BnbCases.Codec(name);
        using Tensor w = FromFile(f, "input");
        using Linear8bit layer = Linear8bit.Quantize(w, null, ScalarType.Float32);
        Assert.Equal(f.Bytes("CB").Select(b => (sbyte)b), layer.Rows());
        Assert.Equal(f.ReadSingles("SCB"), layer.RowScales());
        using Tensor expected = FromFile(f, "dequantized");
        using Tensor back = layer.Dequantize();
        Assert.Equal(Bits(expected), Bits(back));
    }

    [Theory]
    [InlineData(WeightQuantization.Nf4)]
    [InlineData(WeightQuantization.Fp4)]
    [InlineData(WeightQuantization.Int8)]
    public void Forward_is_the_linear_of_the_dequantized_weight(WeightQuantization kind)
    {
        torch.manual_seed(3);
        using Tensor w = torch.randn(48, 80) * 0.1;
        using Tensor b = torch.randn(48);
        using QuantizedLinear layer = kind == WeightQuantization.Int8
            ? Linear8bit.Quantize(w, b, ScalarType.Float32)
            : Linear4bit.Quantize(w, b, kind == WeightQuantization.Nf4 ? FourBitType.Nf4 : FourBitType.Fp4, doubleQuant: true, ScalarType.Float32);
        Assert.Equal(kind, layer.Quantization);
        Assert.Equal(80, layer.InFeatures);
        Assert.Equal(48, layer.OutFeatures);
        Assert.DoesNotContain(layer.parameters(), p => p.requires_grad);
        using Tensor x = torch.randn(2, 5, 80);
        using Tensor wd = layer.Dequantize();
        using Tensor expected = nn.functional.linear(x, wd, b);
        using Tensor y = layer.forward(x);
        Assert.Equal([2L, 5, 48], y.shape);
        Assert.True(Tensors.MaxAbsDiff(y, expected) < 1e-6);
        // And close to the full-precision layer: 4-bit moves each weight by at most half a code gap of its block.
        using Tensor full = nn.functional.linear(x, w, b);
        double tolerance = kind == WeightQuantization.Int8 ? 0.02 : 0.5;
        Assert.True(Tensors.MaxAbsDiff(y, full) < tolerance, $"{kind}: {Tensors.MaxAbsDiff(y, full)}");
        using Tensor rel = (wd - w).norm() / w.norm();
        Assert.True(rel.item<float>() < (kind == WeightQuantization.Int8 ? 0.01 : 0.13), $"{kind}: relative weight error {rel.item<float>()}");
    }

    [Fact]
    public void Compute_dtype_is_used_and_the_output_keeps_the_input_dtype()
    {
        torch.manual_seed(4);
        using Tensor w = torch.randn(32, 64) * 0.05;
        using Linear4bit bf16 = Linear4bit.Quantize(w, null, FourBitType.Nf4, false, ScalarType.BFloat16);
        using Linear4bit f32 = Linear4bit.Quantize(w, null, FourBitType.Nf4, false, ScalarType.Float32);
        using Tensor x = torch.randn(3, 64);
        using Tensor dq = bf16.Dequantize();
        Assert.Equal(ScalarType.BFloat16, dq.dtype);
        using Tensor y = bf16.forward(x);
        using Tensor y32 = f32.forward(x);
        Assert.Equal(ScalarType.Float32, y.dtype);
        Assert.True(Tensors.MaxAbsDiff(y, y32) < 0.02, $"{Tensors.MaxAbsDiff(y, y32)}");
        Assert.True(Tensors.MaxAbsDiff(y, y32) > 0, "bfloat16 compute should round differently from float32");
    }

    [Fact]
    public void Requantize_replaces_the_weight_with_the_same_settings()
    {
        torch.manual_seed(5);
        using Tensor w1 = torch.randn(16, 128) * 0.02;
        using Tensor w2 = torch.randn(16, 128) * 0.02;
        using Linear4bit layer = Linear4bit.Quantize(w1, null, FourBitType.Nf4, true, ScalarType.Float32);
        using Linear4bit fresh = Linear4bit.Quantize(w2, null, FourBitType.Nf4, true, ScalarType.Float32);
        layer.Requantize(w2);
        Assert.True(layer.DoubleQuant);
        Assert.Equal(fresh.PackedCodes(), layer.PackedCodes());
        using Tensor a = layer.Dequantize();
        using Tensor b = fresh.Dequantize();
        Assert.Equal(Bits(b), Bits(a));
        Assert.Throws<ArgumentException>(() => layer.Requantize(torch.zeros(16, 64)));

        using Linear8bit eight = Linear8bit.Quantize(w1, null, ScalarType.Float32);
        using Linear8bit eightFresh = Linear8bit.Quantize(w2, null, ScalarType.Float32);
        eight.Requantize(w2);
        Assert.Equal(eightFresh.Rows(), eight.Rows());
    }

    [Fact]
    public void Converting_the_dtype_changes_only_the_bias()
    {
        torch.manual_seed(6);
        using Tensor w = torch.randn(8, 64);
        using Tensor b = torch.randn(8);
        using Linear4bit layer = Linear4bit.Quantize(w, b, FourBitType.Nf4, false, ScalarType.Float32);
        using Tensor before = layer.Dequantize();
        layer.to(ScalarType.BFloat16);
        Assert.Equal(ScalarType.BFloat16, layer.Bias!.dtype);
        Assert.Contains(layer.named_buffers(), nb => nb.name == "absmax" && nb.buffer.dtype == ScalarType.Float32);
        Assert.Contains(layer.named_buffers(), nb => nb.name == "weight" && nb.buffer.dtype == ScalarType.Byte);
        using Tensor after = layer.Dequantize();
        Assert.Equal(Bits(before), Bits(after));
        Assert.Contains(layer.named_parameters(), np => np.name == "bias" && np.parameter.dtype == ScalarType.BFloat16);
    }

    [Fact]
    public void Stored_bytes_are_four_and_a_half_or_about_four_bits_per_weight()
    {
        using Tensor w = torch.randn(1024, 1024) * 0.02;
        using Linear4bit plain = Linear4bit.Quantize(w, null, FourBitType.Nf4, false, ScalarType.Float32);
        using Linear4bit dq = Linear4bit.Quantize(w, null, FourBitType.Nf4, true, ScalarType.Float32);
        using Linear8bit eight = Linear8bit.Quantize(w, null, ScalarType.Float32);
        long n = 1024 * 1024;
        Assert.Equal(n / 2 + n / 64 * 4, plain.QuantizedBytes);                              // 4 + 32/64 = 4.5 bits
        Assert.Equal(n / 2 + n / 64 + n / 64 / 256 * 4 + 4, dq.QuantizedBytes);              // 4 + 8/64 + 32/(64*256)
        Assert.Equal(n + 1024 * 4, eight.QuantizedBytes);
        Assert.True(dq.QuantizedBytes * 8.0 / n <= 4.13);
    }

    [Fact]
    public void Non_finite_weights_are_refused()
    {
        using Tensor w = torch.ones(4, 64);
        w[1, 3] = torch.tensor(float.NaN);
        Assert.Throws<ArgumentException>(() => Linear4bit.Quantize(w, null, FourBitType.Nf4, false, ScalarType.Float32));
        Assert.Throws<ArgumentException>(() => Linear8bit.Quantize(w, null, ScalarType.Float32));
    }
}
