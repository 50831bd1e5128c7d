using PeftHost.Abstractions.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftHost.Plugins.AdaLora;

/// <summary>
/// AdaLoRA on a linear layer (PEFT's <c>SVDLinear</c>): the update is P Λ Q in SVD form, held as
/// <c>lora_A.&lt;adapter&gt;</c> (r x in, Q), <c>lora_E.&lt;adapter&gt;</c> (r x 1, Λ) and
/// <c>lora_B.&lt;adapter&gt;</c> (out x r, P), with <c>ranknum.&lt;adapter&gt;</c> (1, not trainable):
/// y = base(x) + (dropout(x) @ (A * E)ᵀ @ Bᵀ) * scaling / (ranknum + 1e-5).
/// </summary>
/// <remarks>
/// On a quantized base (PEFT's <c>adalora.bnb.SVDLinear4bit</c> / <c>SVDLinear8bitLt</c>) the triplets are float32
/// and the forward is the same. PEFT cannot merge AdaLoRA into bitsandbytes layers; here a merge adds ΔW to the
/// dequantized weight and quantizes it again, as PEFT merges LoRA into them (rounded to the quantization's grid).
/// </remarks>
public sealed class AdaLoraLinear : TunerLayer
{
    /// <summary>The key of the rank counter, which PEFT's saved adapters leave out.</summary>
    public const string RanknumKey = "ranknum";

    // PEFT's AdaLoraLayer: adapter_layer_names lora_A, lora_B, lora_E; other_param_names r, scaling,
    // lora_dropout, ranknum (a parameter that never trains).
    private readonly AdapterParameterDict lora_A;
    private readonly AdapterParameterDict lora_B;
    private readonly AdapterParameterDict lora_E;
    private readonly AdapterParameterDict ranknum;
    private readonly AdapterModuleDict<AdapterDropout> lora_dropout;
    private readonly AdapterValueDict<double> _scaling;
    private readonly AdapterValueDict<int> _rank;
    private readonly BaseLayerWeight _weight;

    /// <summary>Wraps a linear layer of shape out x in.</summary>
    public AdaLoraLinear(Linear baseLayer) : this((nn.Module<Tensor, Tensor>)baseLayer) { }

    /// <summary>Wraps a quantized linear layer of shape out x in.</summary>
    public AdaLoraLinear(QuantizedLinear baseLayer) : this((nn.Module<Tensor, Tensor>)baseLayer) { }

    private AdaLoraLinear(nn.Module<Tensor, Tensor> baseLayer) : base(nameof(AdaLoraLinear), baseLayer)
    {
        _weight = BaseLayerWeight.Of(baseLayer);
        InFeatures = _weight.Shape[1];
        OutFeatures = _weight.Shape[0];
        lora_A = AdapterParameters("lora_A");
        lora_B = AdapterParameters("lora_B");
        lora_E = AdapterParameters("lora_E");
        ranknum = AdapterParameters(RanknumKey, trainable: false);
        lora_dropout = AdapterModules<AdapterDropout>("lora_dropout", trainable: false);
        _scaling = AdapterValues<double>("scaling");
        _rank = AdapterValues<int>("r");
    }

    /// <summary>The base layer's input size.</summary>
    public long InFeatures { get; }

    /// <summary>The base layer's output size.</summary>
    public long OutFeatures { get; }

    /// <summary>The rank of an adapter in this layer.</summary>
    public int Rank(string adapter) => _rank[adapter];

    /// <summary>The scaling of an adapter.</summary>
    public double Scaling(string adapter) => _scaling[adapter];

    /// <summary>An adapter's tensors (A, B, E), live: for the orthogonal regularisation.</summary>
    public (Tensor A, Tensor B, Tensor E) Triplets(string adapter) => (lora_A[adapter], lora_B[adapter], lora_E[adapter]);

    /// <summary>
    /// Adds an adapter of rank <paramref name="r"/> as PEFT's AdaLoraLayer.update_layer does: A, B
    /// normal(0, 0.02) and E zeros when <paramref name="init"/> (else standard normal), ranknum
    /// <paramref name="ranknumValue"/>.
    /// </summary>
    public void AddAdapter(string adapter, int r, double scaling, double ranknumValue, double dropout, bool init)
    {
        (ScalarType dtype, Device device) = (_weight.DType, _weight.Device);
        Parameter a = new(randn([r, InFeatures], dtype: dtype, device: device));
        Parameter e = new(randn([r, 1], dtype: dtype, device: device));
        Parameter b = new(randn([OutFeatures, r], dtype: dtype, device: device));
        Parameter n = new(full([1], ranknumValue, dtype: dtype, device: device), requires_grad: false);
        if (init)
        {
            using (no_grad())
            {
                nn.init.zeros_(e);
                nn.init.normal_(a, mean: 0.0, std: 0.02);
                nn.init.normal_(b, mean: 0.0, std: 0.02);
            }
        }
        lora_A.Add(adapter, a);
        lora_E.Add(adapter, e);
        lora_B.Add(adapter, b);
        ranknum.Add(adapter, n);
        lora_dropout.Add(adapter, new AdapterDropout(dropout));
        _scaling[adapter] = scaling;
        _rank[adapter] = r;
    }

    /// <summary>
    /// Masks the triplets <paramref name="keep"/> leaves out: their singular value (E entry) set to 0, in place
    /// (PEFT's rank allocation; A and B stay, and go on training).
    /// </summary>
    /// <exception cref="ArgumentException">The mask's length is not the adapter's rank.</exception>
    public void MaskTriplets(string adapter, bool[] keep)
    {
        Parameter e = lora_E[adapter];
        if (keep.Length != e.shape[0]) throw new ArgumentException($"a rank mask of {keep.Length} entries for an adapter of rank {e.shape[0]}.", nameof(keep));
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        Tensor drop = tensor(keep.Select(k => !k).ToArray(), device: e.device).view(-1, 1);
        e.masked_fill_(drop, 0.0);
    }

    /// <summary>
    /// Replaces an adapter's triplets by copies of <paramref name="a"/> [r, in], <paramref name="b"/> [out, r] and
    /// <paramref name="e"/> [r, 1] (their rank may differ from the current one), trainable, with ranknum
    /// <paramref name="ranknumValue"/>: on resume, the untruncated triplets a checkpoint kept.
    /// </summary>
    /// <exception cref="ArgumentException">The shapes do not form triplets of this layer.</exception>
    public void RestoreTriplets(string adapter, Tensor a, Tensor b, Tensor e, double ranknumValue)
    {
        long r = a.shape[0];
        if (a.ndim != 2 || a.shape[1] != InFeatures || !b.shape.SequenceEqual([OutFeatures, r]) || !e.shape.SequenceEqual([r, 1L]))
            throw new ArgumentException($"triplets of shapes A [{string.Join(", ", a.shape)}], B [{string.Join(", ", b.shape)}], E [{string.Join(", ", e.shape)}] do not fit a layer of {InFeatures} inputs and {OutFeatures} outputs.");
        Tensor weight = ((Linear)BaseLayer).weight!;
        (ScalarType dtype, Device device) = (weight.dtype, weight.device);
        bool trainable = lora_A[adapter].requires_grad;
        foreach ((AdapterParameterDict dict, Tensor value) in new[] { (lora_A, a), (lora_B, b), (lora_E, e) })
        {
            dict.Remove(adapter);
            dict.Add(adapter, new Parameter(value.detach().to(dtype, device).clone(), requires_grad: trainable));
        }
        using (no_grad()) ranknum[adapter].fill_(ranknumValue);
        _rank[adapter] = (int)r;
    }

    /// <summary>The update PEFT's <c>SVDLinear.get_delta_weight</c> gives: B (A * E) * scaling / (ranknum + 1e-5), [out, in].</summary>
    public Tensor DeltaWeight(string adapter)
    {
        using var scope = NewDisposeScope();
        Tensor delta = lora_B[adapter].matmul(lora_A[adapter].mul(lora_E[adapter])).mul(_scaling[adapter]).div(ranknum[adapter].add(1e-5));
        return scope.MoveToOuter(delta);
    }

    /// <summary>
    /// The update as one low-rank pair, detached CPU copies: A' = A * E [r, in] (the singular values folded
    /// into the rows of A), B [out, r] and the scale scaling / (ranknum + 1e-5), so that
    /// scale · B·A' is <see cref="DeltaWeight"/>.
    /// </summary>
    public (Tensor A, Tensor B, double Scale) LowRankPair(string adapter)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        Tensor a = lora_A[adapter].mul(lora_E[adapter]).cpu().contiguous();
        Tensor b = lora_B[adapter].detach().cpu().clone();
        double count = ranknum[adapter].to(ScalarType.Float64).item<double>();
        return (scope.MoveToOuter(a), scope.MoveToOuter(b), _scaling[adapter] / (count + 1e-5));
    }

    /// <inheritdoc />
    protected override void MergeInto(string adapter, bool safeMerge)
    {
        using Tensor weight = _weight.Read();
        using Tensor delta = DeltaWeight(adapter);
        using Tensor typed = delta.to(weight.dtype);
        if (_weight.Parameter is { } parameter)
        {
            if (safeMerge)
            {
                using Tensor sum = weight.add(typed);
                EnsureFinite(sum, adapter);
            }
            parameter.add_(typed);
            return;
        }
        using Tensor merged = weight.add(typed);
        if (safeMerge) EnsureFinite(merged, adapter);
        _weight.Write(merged);
    }

    /// <inheritdoc />
    protected override void UnmergeFrom(string adapter)
    {
        using Tensor weight = _weight.Read();
        using Tensor delta = DeltaWeight(adapter);
        using Tensor typed = delta.to(weight.dtype);
        if (_weight.Parameter is { } parameter)
        {
            parameter.sub_(typed);
            return;
        }
        using Tensor original = weight.sub(typed);
        _weight.Write(original);
    }

    /// <inheritdoc />
    protected override Tensor ForwardWithAdapters(Tensor input, IReadOnlyList<string> activeAdapters)
    {
        Tensor result = BaseLayer.forward(input);
        foreach (string adapter in activeAdapters)
        {
            using var scope = NewDisposeScope();
            Tensor a = lora_A[adapter], b = lora_B[adapter], e = lora_E[adapter];
            Tensor x = lora_dropout[adapter].forward(input.to(a.dtype));
            Tensor delta = x.matmul(a.mul(e).t()).matmul(b.t()).mul(_scaling[adapter]).div(ranknum[adapter].add(1e-5));
            Tensor sum = result.add_(delta.to(result.dtype));
            scope.MoveToOuter(sum);
        }
        return result;
    }

    /// <summary>
    /// Methods combined on one module (contract 1.2, PEFT's mixed model): around another method's layer this one
    /// adds its own delta, computed from the input and the original weight, to that layer's output.
    /// </summary>
    public override string? CannotWrapReason(TunerLayer inner) => null;
}
