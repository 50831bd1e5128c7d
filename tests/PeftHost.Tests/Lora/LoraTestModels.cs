using PeftHost.Abstractions.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftHost.Tests.Lora;

/// <summary>A tiny language model: an embedding, two blocks (q/v Linear, a GPT-2 Conv1D) and an lm_head.</summary>
internal sealed class TinyLm : nn.Module<Tensor, Tensor>
{
    private readonly nn.Module<Tensor, Tensor> embed;
    private readonly ModuleList<TinyBlock> layers = new();
    private readonly nn.Module<Tensor, Tensor> lm_head;

    public TinyLm(int vocab = 11, int hidden = 6, int seed = 3) : base(nameof(TinyLm))
    {
        torch.manual_seed(seed);
        embed = nn.Embedding(vocab, hidden);
        layers.Add(new TinyBlock(hidden));
        layers.Add(new TinyBlock(hidden));
        lm_head = nn.Linear(hidden, vocab);
        RegisterComponents();
    }

    public override Tensor forward(Tensor ids)
    {
        Tensor h = embed.forward(ids);
        foreach (TinyBlock b in layers) h = b.forward(h);
        return lm_head.forward(h);
    }

    internal sealed class TinyBlock : nn.Module<Tensor, Tensor>
    {
        private readonly nn.Module<Tensor, Tensor> q_proj;
        private readonly nn.Module<Tensor, Tensor> v_proj;
        private readonly nn.Module<Tensor, Tensor> c_fc;

        public TinyBlock(int hidden) : base(nameof(TinyBlock))
        {
            q_proj = nn.Linear(hidden, hidden);
            v_proj = nn.Linear(hidden, hidden);
            c_fc = new Conv1D(hidden, hidden);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x) => x + q_proj.forward(x) * torch.tanh(v_proj.forward(x)) + c_fc.forward(x);
    }
}

/// <summary>One Embedding named "embed".</summary>
internal sealed class OneEmbedding : nn.Module<Tensor, Tensor>
{
    private readonly nn.Module<Tensor, Tensor> embed;

    public OneEmbedding(int vocab = 12, int dim = 5, int seed = 4) : base(nameof(OneEmbedding))
    {
        torch.manual_seed(seed);
        embed = nn.Embedding(vocab, dim);
        RegisterComponents();
    }

    public override Tensor forward(Tensor ids) => embed.forward(ids);
}

/// <summary>One GPT-2 Conv1D named "c_attn".</summary>
internal sealed class OneConv1D : nn.Module<Tensor, Tensor>
{
    private readonly nn.Module<Tensor, Tensor> c_attn;

    public OneConv1D(int inFeatures = 6, int outFeatures = 9, int seed = 5) : base(nameof(OneConv1D))
    {
        torch.manual_seed(seed);
        c_attn = new Conv1D(inFeatures, outFeatures);
        using (no_grad()) ((Conv1D)c_attn).bias.uniform_(-0.5, 0.5);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => c_attn.forward(x);
}
