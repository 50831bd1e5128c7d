using PeftHost.Abstractions.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MyMethod;

/// <summary>
/// A low-rank update of a Linear layer: y = base(x) + (alpha / r) · B(A(x)), with A [r, in] and B [out, r]
/// trained and the base weights frozen. B starts at zero, so a new adapter leaves the model's output
/// unchanged until it is trained. Saved as <c>lowrank_A.&lt;adapter&gt;.weight</c> and
/// <c>lowrank_B.&lt;adapter&gt;.weight</c>; mergeable (W += scaling · B·A).
/// </summary>
public sealed class MyMethodLinear : TunerLayer
{
    // Every per-adapter container is declared once, here: the base class derives from them the adapters
    // held, deletion, trainable flags and the exported tensors.
    private readonly AdapterModuleDict<AdapterLinear> lowrank_A;
    private readonly AdapterModuleDict<AdapterLinear> lowrank_B;
    private readonly AdapterValueDict<double> scaling;

    /// <summary>Wraps a Linear layer of shape out x in.</summary>
    public MyMethodLinear(Linear baseLayer) : base(nameof(MyMethodLinear), baseLayer)
    {
        InFeatures = baseLayer.weight!.shape[1];
        OutFeatures = baseLayer.weight.shape[0];
        lowrank_A = AdapterModules<AdapterLinear>("lowrank_A");
        lowrank_B = AdapterModules<AdapterLinear>("lowrank_B");
        scaling = AdapterValues<double>("scaling");
    }

    /// <summary>The base layer's input size.</summary>
    public long InFeatures { get; }

    /// <summary>The base layer's output size.</summary>
    public long OutFeatures { get; }

    private Parameter Weight => ((Linear)BaseLayer).weight!;

    /// <summary>
    /// Adds an adapter of rank <paramref name="r"/>: A Kaiming-uniform, B zero when
    /// <paramref name="initialise"/> (an imported adapter's tensors are copied in right after).
    /// </summary>
    public void AddAdapter(string adapter, int r, double alpha, bool initialise)
    {
        var a = new AdapterLinear(InFeatures, r, hasBias: false, device: Weight.device, dtype: Weight.dtype);
        var b = new AdapterLinear(r, OutFeatures, hasBias: false, device: Weight.device, dtype: Weight.dtype);
        if (initialise)
        {
            using var noGrad = no_grad();
            nn.init.kaiming_uniform_(a.weight, a: Math.Sqrt(5));
            nn.init.zeros_(b.weight);
        }
        lowrank_A.Add(adapter, a);
        lowrank_B.Add(adapter, b);
        scaling[adapter] = alpha / r;
    }

    /// <summary>The base output plus each active adapter's update.</summary>
    protected override Tensor ForwardWithAdapters(Tensor input, IReadOnlyList<string> activeAdapters)
    {
        using var scope = NewDisposeScope();
        Tensor result = BaseLayer.forward(input);
        foreach (string adapter in activeAdapters)
            result = result + lowrank_B[adapter].forward(lowrank_A[adapter].forward(input)) * scaling[adapter];
        return scope.MoveToOuter(result);
    }

    /// <summary>W [out, in] += scaling · B·A; with <paramref name="safeMerge"/>, checked for NaN/Inf before it is written.</summary>
    protected override void MergeInto(string adapter, bool safeMerge)
    {
        using Tensor delta = Delta(adapter);
        using Tensor merged = Weight.add(delta);
        if (safeMerge) EnsureFinite(merged, adapter);
        Weight.copy_(merged);
    }

    /// <summary>W -= scaling · B·A: the exact inverse of <see cref="MergeInto"/>.</summary>
    protected override void UnmergeFrom(string adapter)
    {
        using Tensor delta = Delta(adapter);
        Weight.sub_(delta);
    }

    private Tensor Delta(string adapter)
    {
        using var scope = NewDisposeScope();
        Tensor delta = lowrank_B[adapter].weight.matmul(lowrank_A[adapter].weight).mul(scaling[adapter]).to(Weight.dtype);
        return scope.MoveToOuter(delta);
    }
}
