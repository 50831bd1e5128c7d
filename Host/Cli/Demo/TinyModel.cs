using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Cli.Demo;

/// <summary>
/// A small model made locally for the demo and `bench reload` (nothing is downloaded): token
/// embedding, two gated mixing blocks with q/v/o projections, and an output head, named as in
/// Llama-style models so that PEFT's usual target_modules apply.
/// </summary>
internal sealed class TinyModel : nn.Module<Tensor, Tensor>
{
    private readonly nn.Module<Tensor, Tensor> embed_tokens;
    private readonly TorchSharp.Modules.ModuleList<TinyBlock> layers = new();
    private readonly nn.Module<Tensor, Tensor> lm_head;

    public TinyModel(int vocab = 64, int hidden = 32, int blocks = 2, int seed = 0) : base(nameof(TinyModel))
    {
        torch.manual_seed(seed);
        embed_tokens = nn.Embedding(vocab, hidden);
        for (int i = 0; i < blocks; i++) layers.Add(new TinyBlock(hidden));
        lm_head = nn.Linear(hidden, vocab, hasBias: false);
        RegisterComponents();
        eval();
    }

    public override Tensor forward(Tensor inputIds)
    {
        using var scope = NewDisposeScope();
        Tensor h = embed_tokens.forward(inputIds);
        foreach (TinyBlock block in layers) h = block.forward(h);
        return scope.MoveToOuter(lm_head.forward(h));
    }
}

/// <summary>h + o_proj(q_proj(h) * sigmoid(v_proj(h))).</summary>
internal sealed class TinyBlock : nn.Module<Tensor, Tensor>
{
    private readonly nn.Module<Tensor, Tensor> q_proj;
    private readonly nn.Module<Tensor, Tensor> v_proj;
    private readonly nn.Module<Tensor, Tensor> o_proj;

    public TinyBlock(int hidden) : base(nameof(TinyBlock))
    {
        q_proj = nn.Linear(hidden, hidden);
        v_proj = nn.Linear(hidden, hidden);
        o_proj = nn.Linear(hidden, hidden);
        RegisterComponents();
    }

    public override Tensor forward(Tensor h) => h + o_proj.forward(q_proj.forward(h) * torch.sigmoid(v_proj.forward(h)));
}
