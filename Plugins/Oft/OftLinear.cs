using PeftHost.Abstractions.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftHost.Plugins.Oft;

/// <summary>
/// OFT on a linear layer, PEFT 0.13.2's <c>oft.Linear</c>: per adapter a parameter dict entry <c>oft_r</c>
/// [r, b, b] (b = ⌈out / r⌉; [1, b, b] with <c>block_share</c>) whose Cayley transforms
/// Q = (I − S)(I + S)⁻¹, S = (A − Aᵀ) / 2, form the block-diagonal rotation R [r·b, r·b], cropped to
/// [out, out] where r does not divide out. The base output is rotated around its bias:
/// y = (base(x) − b) · R + b = x Wᵀ R + b, each active adapter in turn; merging writes W := Rᵀ W.
/// </summary>
/// <remarks>
/// COFT (<c>coft</c>), as PEFT: before every use (forward or merge) each stored block whose Frobenius norm
/// exceeds e = eps · b² / √n (n stored blocks) is scaled to norm e, in place and outside autograd, so the
/// parameter itself changes. In training, <c>module_dropout</c> skips an adapter for a forward pass.
/// </remarks>
public sealed class OftLinear : TunerLayer
{
    private readonly AdapterParameterDict oft_r;
    private readonly AdapterValueDict<int> r;
    private readonly AdapterValueDict<bool> coft;
    private readonly AdapterValueDict<double> eps;
    private readonly AdapterValueDict<double> module_dropout;

    /// <summary>Wraps a linear layer of shape out x in.</summary>
    public OftLinear(Linear baseLayer) : base(nameof(OftLinear), baseLayer)
    {
        OutFeatures = baseLayer.weight!.shape[0];
        oft_r = AdapterParameters("oft_r");
        r = AdapterValues<int>("r");
        coft = AdapterValues<bool>("coft");
        eps = AdapterValues<double>("eps");
        module_dropout = AdapterValues<double>("module_dropout");
    }

    /// <summary>The base layer's output size (the rotated side).</summary>
    public long OutFeatures { get; }

    /// <summary>
    /// Adds an adapter of <paramref name="blocks"/> blocks (PEFT's <c>update_layer</c>): <c>oft_r</c> zeros (R = I)
    /// when <paramref name="initWeights"/>, else kaiming-uniform (a = √5); the COFT radius eps · b².
    /// </summary>
    public void AddAdapter(string adapter, int blocks, double moduleDropout, bool initWeights, bool useCoft, double epsilon, bool blockShare)
    {
        Tensor weight = ((Linear)GetBaseLayer()).weight!;
        long b = (OutFeatures + blocks - 1) / blocks;
        using Tensor data = empty([blockShare ? 1 : blocks, b, b], dtype: weight.dtype, device: weight.device);
        using (no_grad())
        {
            if (initWeights) data.zero_();
            else nn.init.kaiming_uniform_(data, a: Math.Sqrt(5));
        }
        oft_r.Add(adapter, new Parameter(data));
        r[adapter] = blocks;
        coft[adapter] = useCoft;
        eps[adapter] = epsilon * b * b;
        module_dropout[adapter] = moduleDropout;
    }

    /// <summary>
    /// PEFT's <c>get_delta_weight</c> cropped as its callers crop it: the rotation R [out, out] of one adapter
    /// (with COFT, <c>oft_r</c> is projected first, in place).
    /// </summary>
    public Tensor Rotation(string adapter)
    {
        using var scope = NewDisposeScope();
        Parameter blocks = oft_r[adapter];
        if (coft[adapter])
            using (no_grad()) blocks.copy_(Project(blocks, eps[adapter]));
        Tensor q = Cayley(blocks);
        int n = r[adapter];
        Tensor[] diagonal = Enumerable.Range(0, n).Select(i => q[q.shape[0] == 1 ? 0 : i]).ToArray();
        Tensor rotation = block_diag(diagonal);
        if (rotation.shape[0] != OutFeatures) rotation = rotation[..(int)OutFeatures, ..(int)OutFeatures];
        return scope.MoveToOuter(rotation);
    }

    // PEFT's _cayley_batch: Q = (I - S) @ inverse(I + S), S the skew-symmetric part of each block.
    private static Tensor Cayley(Tensor data)
    {
        using var scope = NewDisposeScope();
        Tensor skew = data.sub(data.transpose(1, 2)).mul(0.5);
        Tensor eye = torch.eye(data.shape[1], dtype: data.dtype, device: data.device).unsqueeze(0).expand_as(data);
        return scope.MoveToOuter(eye.sub(skew).bmm(linalg.inv(eye.add(skew))));
    }

    // PEFT's _project_batch: blocks farther than eps / sqrt(n) from 0 (its "identity" is a zero matrix) are scaled onto that radius.
    private static Tensor Project(Tensor data, double epsilon)
    {
        using var scope = NewDisposeScope();
        double radius = epsilon / Math.Sqrt(data.shape[0]);
        Tensor norm = data.flatten(1).norm(1, keepdim: true).unsqueeze(-1);
        Tensor projected = where(norm.le(radius), data, data.div(norm).mul(radius));
        return scope.MoveToOuter(projected);
    }

    /// <inheritdoc />
    protected override Tensor ForwardWithAdapters(Tensor input, IReadOnlyList<string> activeAdapters)
    {
        using var scope = NewDisposeScope();
        Tensor result = BaseLayer.forward(input);
        Tensor? bias = ((Linear)GetBaseLayer()).bias?.detach();
        if (bias is not null) result = result.sub(bias);
        foreach (string adapter in activeAdapters)
        {
            // As PEFT: in training, the adapter is applied when rand(1) > module_dropout.
            if (training && rand(1).item<float>() <= module_dropout[adapter]) continue;
            result = result.matmul(Rotation(adapter).to(result.dtype));
        }
        if (bias is not null) result = result.add(bias);
        return scope.MoveToOuter(result.to(input.dtype));
    }

    /// <summary>PEFT's <c>OFTLayer.merge</c>: W := (Wᵀ R)ᵀ; the bias is left as it is.</summary>
    protected override void MergeInto(string adapter, bool safeMerge)
    {
        Parameter weight = ((Linear)GetBaseLayer()).weight!;
        using var scope = NewDisposeScope();
        Tensor merged = weight.t().mm(Rotation(adapter).to(weight.dtype)).t();
        if (safeMerge) EnsureFinite(merged, adapter);
        weight.copy_(merged);
    }

    /// <summary>PEFT's <c>OFTLayer.unmerge</c>: W := (W'ᵀ R⁻¹)ᵀ.</summary>
    protected override void UnmergeFrom(string adapter)
    {
        Parameter weight = ((Linear)GetBaseLayer()).weight!;
        using var scope = NewDisposeScope();
        Tensor inverse = linalg.inv(Rotation(adapter)).to(weight.dtype);
        weight.copy_(weight.t().mm(inverse).t());
    }

    /// <summary>
    /// Methods combined on one module (contract 1.2, PEFT's mixed model): around another method's layer this one
    /// rotates that layer's output, the original module's bias taken out first and put back after:
    /// y = (inner(x) − b) R + b. Refused where a layer under it changes that bias (BitFit): the change would be rotated.
    /// </summary>
    public override string? CannotWrapReason(TunerLayer inner) => inner.ChangesBias ? BiasReason : null;

    /// <summary>Refused under a layer that changes the bias (BitFit): OFT takes out and puts back the original bias, not that one.</summary>
    public override string? CannotBeWrappedReason(TunerLayer outer) => outer.ChangesBias ? BiasReason : null;

    private const string BiasReason =
        "OFT takes the original module's bias out of the output before its rotation and puts it back after, while the other method trains that bias, so the trained bias would be rotated or bypassed";
}
