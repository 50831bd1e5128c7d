using PeftHost.Engine.Quantization;
using PeftHost.Models;
using PeftHost.Models.Quantization;
using PeftHost.Tests.Support;
using TorchSharp;
using TorchSharp.Modules;
using Xunit;
using static TorchSharp.torch;

namespace PeftHost.Tests.Quantization;

/// <summary>PrepareForKbitTraining as PEFT 0.13.2's prepare_model_for_kbit_training.</summary>
public sealed class KbitTrainingTests
{
    [Fact]
    public void Half_precision_parameters_become_float32_and_the_quantized_weights_stay()
    {
        (_, nn.Module model) = ModelFactory.Load(Path.Combine(BnbCases.Model("llama_nf4_double_quant"), "quantized"), ScalarType.BFloat16);
        using (model)
        {
            Assert.Contains(model.parameters(), p => p.dtype == ScalarType.BFloat16);
            byte[] before = model.modules().OfType<Linear4bit>().First().PackedCodes();
            IReadOnlyList<string> cast = KbitTraining.PrepareForKbitTraining(model);
            Assert.All(model.parameters(), p => Assert.Equal(ScalarType.Float32, p.dtype));
            Assert.All(model.parameters(), p => Assert.False(p.requires_grad));
            Assert.Contains("model.embed_tokens.weight", cast);
            Assert.Contains("lm_head.weight", cast);
            Assert.Contains("model.norm.weight", cast);
            Assert.Equal(model.parameters().Count(), cast.Count);
            Linear4bit first = model.modules().OfType<Linear4bit>().First();
            Assert.Equal(before, first.PackedCodes());
            Assert.Contains(first.named_buffers(), b => b.name == "nested_absmax" && b.buffer.dtype == ScalarType.Float32);
            Assert.True(((IGradientCheckpointing)model).GradientCheckpointing, "PEFT's use_gradient_checkpointing defaults to true");

            using Tensor ids = BnbCases.InputIds("llama_nf4_double_quant");
            using Tensor logits = ((ICausalLM)model).Forward(ids);
            Assert.Equal(ScalarType.Float32, logits.dtype);
            using Tensor expected = BnbCases.Logits("llama_nf4_double_quant", "quantized");
            // bfloat16 embeddings and norms, cast to float32, carry bfloat16's rounding.
            Assert.True(Tensors.MaxAbsDiff(logits.detach(), expected) < 0.5, $"{Tensors.MaxAbsDiff(logits.detach(), expected)}");
        }
    }

    [Fact]
    public void A_float32_model_keeps_its_parameters_frozen_in_place()
    {
        (_, nn.Module model) = ModelFactory.Load(Path.Combine(BnbCases.Model("llama_fp4"), "quantized"));
        using (model)
        {
            foreach (var p in model.parameters()) p.requires_grad = true;
            Parameter norm = model.named_parameters().First(p => p.name == "model.norm.weight").parameter;
            Assert.Empty(KbitTraining.PrepareForKbitTraining(model, useGradientCheckpointing: false));
            Assert.False(((IGradientCheckpointing)model).GradientCheckpointing);
            Assert.Same(norm, model.named_parameters().First(p => p.name == "model.norm.weight").parameter);
            Assert.All(model.parameters(), p => Assert.False(p.requires_grad));
        }
    }

    [Fact]
    public void A_tied_head_stays_tied_after_the_cast()
    {
        (_, nn.Module model) = ModelFactory.Load(Path.Combine(BnbCases.Model("gpt2_nf4_double_quant"), "quantized"), ScalarType.Float16);
        using (model)
        {
            IReadOnlyList<string> cast = KbitTraining.PrepareForKbitTraining(model);
            Assert.Contains("transformer.wte.weight", cast);
            Assert.DoesNotContain("lm_head.weight", cast);
            Parameter wte = model.named_parameters().First(p => p.name == "transformer.wte.weight").parameter;
            var head = (Linear)model.named_modules().First(m => m.name == "lm_head").module;
            Assert.Equal(ScalarType.Float32, head.weight!.dtype);
            Assert.Equal(ScalarType.Float32, wte.dtype);
            Assert.Contains(model.modules().OfType<Linear4bit>(), l => l.Bias is { dtype: ScalarType.Float32 });
            using Tensor ids = BnbCases.InputIds("gpt2_nf4_double_quant");
            using (Tensor logits = ((ICausalLM)model).Forward(ids))
            using (Tensor expected = BnbCases.Logits("gpt2_nf4_double_quant", "quantized"))
                Assert.True(Tensors.MaxAbsDiff(logits.detach(), expected) < 0.1, $"{Tensors.MaxAbsDiff(logits.detach(), expected)}");
            using (no_grad()) wte.add_(1.0);   // one tensor under two names: the head sees the change
            Assert.True(Tensors.MaxAbsDiff(head.weight, wte) == 0);
        }
    }
}
