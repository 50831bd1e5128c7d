using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftHost.Models.Bert;

/// <summary>dense → dropout → LayerNorm(· + residual) (<c>attention.output</c> and <c>output</c>).</summary>
public sealed class BertDenseOutput : nn.Module
{
    private nn.Module<Tensor, Tensor> dense;
    private nn.Module<Tensor, Tensor> LayerNorm;
    private readonly double _dropout;

    /// <summary>Maps <paramref name="inFeatures"/> to <paramref name="hidden"/>.</summary>
    public BertDenseOutput(long inFeatures, long hidden, double eps, double dropout) : base(nameof(BertDenseOutput))
    {
        dense = nn.Linear(inFeatures, hidden);
        LayerNorm = nn.LayerNorm(hidden, eps);
        _dropout = dropout;
        register_module("dense", dense);
        register_module("LayerNorm", LayerNorm);
    }

    /// <summary>LayerNorm(dropout(dense(x)) + residual).</summary>
    public Tensor Forward(Tensor x, Tensor residual)
    {
        using var scope = NewDisposeScope();
        Tensor h = nn.functional.dropout(dense.forward(x), _dropout, training);
        return scope.MoveToOuter(LayerNorm.forward(h + residual));
    }
}
