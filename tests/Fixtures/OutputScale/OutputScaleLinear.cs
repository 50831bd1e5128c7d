using PeftHost.Abstractions.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace OutputScale;

/// <summary>y = base(x) · s, with s a learned vector of one entry per output feature, <c>output_scale.&lt;adapter&gt;</c>.</summary>
public sealed class OutputScaleLinear : TunerLayer
{
    private readonly AdapterParameterDict output_scale;

    public OutputScaleLinear(Linear baseLayer) : base(nameof(OutputScaleLinear), baseLayer)
    {
        OutFeatures = baseLayer.weight!.shape[0];
        output_scale = AdapterParameters("output_scale");
    }

    public long OutFeatures { get; }

    public void AddAdapter(string adapter, double init)
    {
        Tensor weight = ((Linear)BaseLayer).weight!;
        using Tensor data = full([OutFeatures], init, dtype: weight.dtype, device: weight.device);
        output_scale.Add(adapter, new Parameter(data));
    }

    protected override Tensor ForwardWithAdapters(Tensor input, IReadOnlyList<string> activeAdapters)
    {
        using var scope = NewDisposeScope();
        Tensor result = BaseLayer.forward(input);
        foreach (string adapter in activeAdapters) result = result * output_scale[adapter];
        return scope.MoveToOuter(result);
    }

    // W [out, in] row i and b[i] scale by s[i]: the merged layer gives base(x) · s.
    protected override void MergeInto(string adapter, bool safeMerge)
    {
        var linear = (Linear)BaseLayer;
        Tensor s = output_scale[adapter];
        using Tensor merged = linear.weight!.mul(s.unsqueeze(1));
        if (safeMerge) EnsureFinite(merged, adapter);
        linear.weight.copy_(merged);
        linear.bias?.mul_(s);
    }

    protected override void UnmergeFrom(string adapter)
    {
        var linear = (Linear)BaseLayer;
        Tensor s = output_scale[adapter];
        using Tensor rows = s.unsqueeze(1);
        linear.weight!.div_(rows);
        linear.bias?.div_(s);
    }
}
