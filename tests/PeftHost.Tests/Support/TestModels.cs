using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Tests.Support;

/// <summary>A user's own module with one Linear named "linear" (the PEFT docs' smallest example).</summary>
internal sealed class OneLinear : nn.Module<Tensor, Tensor>
{
    private readonly nn.Module<Tensor, Tensor> linear;

    public OneLinear(int inFeatures = 8, int outFeatures = 6, int seed = 1) : base(nameof(OneLinear))
    {
        torch.manual_seed(seed);
        linear = nn.Linear(inFeatures, outFeatures);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => linear.forward(x);
}

/// <summary>Two blocks in a ModuleList with q/v projections, like a Llama-style layer stack.</summary>
internal sealed class TwoBlocks : nn.Module<Tensor, Tensor>
{
    private readonly TorchSharp.Modules.ModuleList<Block> layers = new();

    public TwoBlocks(int hidden = 8, int seed = 2) : base(nameof(TwoBlocks))
    {
        torch.manual_seed(seed);
        layers.Add(new Block(hidden));
        layers.Add(new Block(hidden));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        foreach (Block b in layers) x = b.forward(x);
        return x;
    }

    internal sealed class Block : nn.Module<Tensor, Tensor>
    {
        private readonly nn.Module<Tensor, Tensor> q_proj;
        private readonly nn.Module<Tensor, Tensor> v_proj;

        public Block(int hidden) : base(nameof(Block))
        {
            q_proj = nn.Linear(hidden, hidden);
            v_proj = nn.Linear(hidden, hidden);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x) => x + q_proj.forward(x) * torch.tanh(v_proj.forward(x));
    }
}

/// <summary>Tensor comparisons.</summary>
internal static class Tensors
{
    public static double MaxAbsDiff(Tensor a, Tensor b) => (a - b).abs().max().item<float>();
}

/// <summary>A tiny sequence classifier: encoder projections and a "classifier" head, as BERT names it.</summary>
internal sealed class TinyClassifier : nn.Module<Tensor, Tensor>
{
    private readonly nn.Module<Tensor, Tensor> query;
    private readonly nn.Module<Tensor, Tensor> value;
    private readonly nn.Module<Tensor, Tensor> classifier;

    public TinyClassifier(int hidden = 8, int labels = 2, int seed = 3) : base(nameof(TinyClassifier))
    {
        torch.manual_seed(seed);
        query = nn.Linear(hidden, hidden);
        value = nn.Linear(hidden, hidden);
        classifier = nn.Linear(hidden, labels);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => classifier.forward(torch.tanh(query.forward(x)) * value.forward(x));
}
