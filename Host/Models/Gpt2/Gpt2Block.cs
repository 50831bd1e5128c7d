using PeftHost.Models.Config;
using PeftHost.Models.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftHost.Models.Gpt2;

/// <summary>One block (<c>transformer.h.N</c>): x + attn(ln_1(x)), then h + mlp(ln_2(h)).</summary>
public sealed class Gpt2Block : nn.Module
{
    // Norms in Module<Tensor, Tensor> fields so that tuners can wrap them (LN tuning, BitFit).
    private nn.Module<Tensor, Tensor> ln_1;
    private readonly Gpt2Attention attn;
    private nn.Module<Tensor, Tensor> ln_2;
    private readonly Gpt2Mlp mlp;

    /// <summary>Block <paramref name="layer"/>.</summary>
    public Gpt2Block(Gpt2Config c, int layer) : base(nameof(Gpt2Block))
    {
        ln_1 = nn.LayerNorm(c.HiddenSize, c.LayerNormEps);
        attn = new Gpt2Attention(c, layer);
        ln_2 = nn.LayerNorm(c.HiddenSize, c.LayerNormEps);
        mlp = new Gpt2Mlp(c);
        register_module("ln_1", ln_1);
        register_module("attn", attn);
        register_module("ln_2", ln_2);
        register_module("mlp", mlp);
    }

    /// <summary>[b, s, hidden] → [b, s, hidden].</summary>
    public Tensor Forward(Tensor hidden, Tensor? mask, KvCache? cache, long start)
    {
        using var scope = NewDisposeScope();
        Tensor h = hidden + attn.Forward(ln_1.forward(hidden), mask, cache, start);
        return scope.MoveToOuter(h + mlp.forward(ln_2.forward(h)));
    }
}
