using PeftHost.Models.Config;
using PeftHost.Models.Layers;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Models.Llama;

/// <summary>Pre-norm block: x + attn(norm(x)), then h + mlp(norm(h)).</summary>
public sealed class LlamaDecoderLayer : nn.Module
{
    private readonly LlamaAttention self_attn;
    private readonly LlamaMlp mlp;
    // Module<Tensor, Tensor> fields so that tuners can wrap the norms (LN tuning).
    private nn.Module<Tensor, Tensor> input_layernorm;
    private nn.Module<Tensor, Tensor> post_attention_layernorm;

    /// <summary>Layer <paramref name="layer"/>.</summary>
    public LlamaDecoderLayer(LlamaConfig c, int layer) : base(nameof(LlamaDecoderLayer))
    {
        self_attn = new LlamaAttention(c, layer);
        mlp = new LlamaMlp(c);
        input_layernorm = new RmsNorm(c.HiddenSize, c.RmsNormEps);
        post_attention_layernorm = new RmsNorm(c.HiddenSize, c.RmsNormEps);
        register_module("self_attn", self_attn);
        register_module("mlp", mlp);
        register_module("input_layernorm", input_layernorm);
        register_module("post_attention_layernorm", post_attention_layernorm);
    }

    /// <summary>hidden [b, s, hidden] → [b, s, hidden].</summary>
    public Tensor Forward(Tensor hidden, Tensor cos, Tensor sin, Tensor? mask, KvCache? cache, long start)
    {
        using var scope = NewDisposeScope();
        // Without autograd the residual adds accumulate into the branch outputs (no new buffers).
        bool grad = torch.is_grad_enabled();
        Tensor attn = self_attn.Forward(input_layernorm.forward(hidden), cos, sin, mask, cache, start);
        Tensor h = grad ? hidden + attn : attn.add_(hidden);
        Tensor mlpOut = mlp.forward(post_attention_layernorm.forward(h));
        Tensor output = grad ? h + mlpOut : mlpOut.add_(h);
        return scope.MoveToOuter(output);
    }
}
