using PeftHost.Abstractions.Layers;
using PeftHost.Plugins.Lora.Variants;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftHost.Plugins.Lora;

/// <summary>
/// What every LoRA layer shares (PEFT's <c>LoraLayer</c>): per-adapter rank, alpha, scaling, dropout
/// (<c>lora_dropout.&lt;adapter&gt;</c>) and variant (DoRA, whose magnitude is
/// <c>lora_magnitude_vector.&lt;adapter&gt;.weight</c>), declared once as the layer's adapter containers,
/// and merging W ← W + ΔW (a variant merges its own way) with its exact inverse.
/// </summary>
/// <remarks>
/// ΔW = scaling · B·A, in the base weight's own layout, is formed only to merge (and by DoRA, whose
/// column norm needs it, as in PEFT); the unmerged plain LoRA forward stays two thin products.
/// </remarks>
public abstract class LoraLayer : TunerLayer
{
    // PEFT's other_param_names: r, lora_alpha, scaling, lora_dropout; and the variant of each adapter that has one.
    private readonly AdapterValueDict<int> r;
    private readonly AdapterValueDict<double> lora_alpha;
    private readonly AdapterValueDict<double> scaling;
    private readonly AdapterModuleDict<AdapterDropout> lora_dropout;
    private readonly AdapterValueDict<ILoraVariant> lora_variant;
    private AdapterModuleDict<DoraMagnitude>? lora_magnitude_vector;
    // PEFT's _caches: tensors a merge leaves for its unmerge (DoRA's norm of the weights before the merge).
    private readonly Dictionary<string, Tensor> _cache = new(StringComparer.Ordinal);

    /// <summary>Wraps <paramref name="baseLayer"/> (a Linear, Embedding, Conv1D or QuantizedLinear).</summary>
    protected LoraLayer(string name, nn.Module<Tensor, Tensor> baseLayer) : base(name, baseLayer)
    {
        BaseWeight = BaseLayerWeight.Of(baseLayer);
        lora_dropout = AdapterModules<AdapterDropout>("lora_dropout", trainable: false);
        r = AdapterValues<int>("r");
        lora_alpha = AdapterValues<double>("lora_alpha");
        scaling = AdapterValues<double>("scaling");
        lora_variant = AdapterValues<ILoraVariant>("lora_variant");
    }

    /// <summary>
    /// The base layer's weight: read (dequantized when the base is quantized) by DoRA and the initialisations
    /// that use it, written by merging (into the parameter in place, or quantized again as PEFT's bitsandbytes layers).
    /// </summary>
    public BaseLayerWeight BaseWeight { get; }

    /// <summary>The base layer's bias, or null (trained with <c>bias: lora_only</c>).</summary>
    public Parameter? Bias => BaseWeight.Bias;

    /// <summary>The rank of an adapter.</summary>
    public int Rank(string adapter) => r[adapter];

    /// <summary>The alpha of an adapter.</summary>
    public double Alpha(string adapter) => lora_alpha[adapter];

    /// <summary>The scaling of an adapter (alpha / r, or alpha / √r with rsLoRA).</summary>
    public double Scaling(string adapter) => scaling[adapter];

    /// <summary>The variant of an adapter, or null for plain LoRA.</summary>
    public ILoraVariant? Variant(string adapter) => lora_variant.TryGetValue(adapter, out ILoraVariant v) ? v : null;

    /// <summary>Whether an adapter uses DoRA.</summary>
    public bool UsesDora(string adapter) => Variant(adapter) is DoraVariant;

    /// <summary>
    /// The dimension of the base weight that DoRA's norm runs over: the input dimension of the weight
    /// as stored (1 for a Linear's [out, in], 0 for a Conv1D's [in, out] and an Embedding's [num, dim]).
    /// </summary>
    public abstract int NormDim { get; }

    /// <summary>The variant this layer type uses for an adapter's config (PEFT's <c>resolve_lora_variant</c>); null: plain LoRA.</summary>
    protected abstract ILoraVariant? ResolveVariant(bool useDora);

    /// <summary>Adds an adapter as PEFT's <c>update_layer</c> does: factors, dropout, scaling, then the variant's own set-up.</summary>
    /// <param name="adapter">The adapter name.</param>
    /// <param name="r">The rank.</param>
    /// <param name="alpha">lora_alpha for this module.</param>
    /// <param name="scaling">alpha / r, or alpha / √r with rsLoRA.</param>
    /// <param name="dropout">lora_dropout.</param>
    /// <param name="init">init_lora_weights as text, or null to skip initialisation (the tensors are about to be imported).</param>
    /// <param name="useDora">Whether the adapter is a DoRA one.</param>
    /// <param name="path">The module path, for error messages.</param>
    public void AddAdapter(string adapter, int r, double alpha, double scaling, double dropout, string? init, bool useDora, string path)
    {
        if (Adapters.Contains(adapter)) throw new ArgumentException($"Module '{path}' already holds an adapter named '{adapter}'.", nameof(adapter));
        if (r <= 0) throw new ArgumentOutOfRangeException(nameof(r), $"LoRA rank for '{path}' must be positive, got {r}.");
        using (no_grad()) CreateFactors(adapter, r, scaling, init, path);
        try
        {
            lora_dropout.Add(adapter, new AdapterDropout(dropout));
            this.r[adapter] = r;
            lora_alpha[adapter] = alpha;
            this.scaling[adapter] = scaling;
            if (ResolveVariant(useDora) is { } variant)
            {
                lora_variant[adapter] = variant;
                variant.Init(this, adapter);
            }
        }
        catch
        {
            DeleteAdapter(adapter);
            throw;
        }
    }

    /// <inheritdoc />
    public override void DeleteAdapter(string adapter)
    {
        base.DeleteAdapter(adapter);
        foreach (string key in _cache.Keys.Where(k => k.StartsWith(adapter + "-", StringComparison.Ordinal)).ToList())
            CachePop(key)!.Dispose();
    }

    /// <summary>
    /// ΔW = scaling · B·A of an adapter in the base weight's layout and dtype (computed in float32
    /// for half-precision weights, as PEFT does on CPU).
    /// </summary>
    public abstract Tensor DeltaWeight(string adapter);

    /// <summary>The adapter's live factors: A [r, in] and B [out, r] (Embedding: [r, num] and [dim, r]).</summary>
    public abstract (Parameter A, Parameter B) Factors(string adapter);

    /// <summary>Replaces the adapter's factors by new tensors (another rank), keeping their trainable flag.</summary>
    protected abstract void SetFactors(string adapter, Tensor a, Tensor b);

    /// <summary>
    /// Pads an adapter's factors with zeros up to <paramref name="targetRank"/> (rows of A, columns of B):
    /// B·A and the scaling do not change, and any adapter of rank up to it can later be swapped in place.
    /// </summary>
    public void PadRank(string adapter, int targetRank)
    {
        (Parameter a, Parameter b) = Factors(adapter);
        long r = a.shape[0];
        if (r == targetRank) return;
        if (r > targetRank) throw new InvalidOperationException($"Adapter '{adapter}' has rank {r}, above the hotswap rank {targetRank}.");
        using (no_grad())
        {
            Tensor paddedA = torch.zeros([targetRank, a.shape[1]], dtype: a.dtype, device: a.device);
            Tensor paddedB = torch.zeros([b.shape[0], targetRank], dtype: b.dtype, device: b.device);
            using (Tensor top = paddedA.narrow(0, 0, r)) top.copy_(a);
            using (Tensor left = paddedB.narrow(1, 0, r)) left.copy_(b);
            bool trainable = a.requires_grad;
            SetFactors(adapter, paddedA.requires_grad_(trainable), paddedB.requires_grad_(trainable));
        }
    }

    /// <summary>
    /// Copies a new adapter's factors (rank ≤ the buffers' rank) into an adapter's buffers in place,
    /// zeroing the rest, and takes its alpha and scaling: no tensor is allocated for the adapter.
    /// </summary>
    public void HotswapFrom(string adapter, Tensor newA, Tensor newB, Tensor? magnitude, double alpha, double scaling)
    {
        (Parameter a, Parameter b) = Factors(adapter);
        long r = newA.shape[0];
        using (no_grad())
        {
            Zero(a);
            Zero(b);
            using (Tensor top = a.narrow(0, 0, r)) top.copy_(newA);
            using (Tensor left = b.narrow(1, 0, r)) left.copy_(newB);
            if (magnitude is not null) Magnitude(adapter).copy_(magnitude);
        }
        lora_alpha[adapter] = alpha;
        this.scaling[adapter] = scaling;
    }

    /// <summary>Zeroes an adapter's factors (a hotswapped adapter that does not target this module).</summary>
    public void ZeroAdapter(string adapter)
    {
        (Parameter a, Parameter b) = Factors(adapter);
        using (no_grad())
        {
            Zero(a);
            Zero(b);
        }
    }

    // TorchSharp 0.107's zero_() returns a new wrapper of the same tensor: undisposed, every hotswap
    // would leave two live handles per layer for the finalizer.
    private static void Zero(Tensor t)
    {
        Tensor same = t.zero_();
        if (!ReferenceEquals(same, t)) same.Dispose();
    }

    /// <summary>Creates an adapter's low-rank factors, initialised as <paramref name="init"/> says (null: not at all).</summary>
    protected abstract void CreateFactors(string adapter, int r, double scaling, string? init, string path);

    /// <summary>The adapter's dropout module.</summary>
    public AdapterDropout Dropout(string adapter) => lora_dropout[adapter];

    /// <summary>The adapter's DoRA magnitude.</summary>
    public Parameter Magnitude(string adapter) => lora_magnitude_vector![adapter].weight;

    /// <summary>
    /// The container of DoRA magnitudes (<c>lora_magnitude_vector</c>), declared with the first DoRA
    /// adapter, so that plain LoRA layers list no DoRA module.
    /// </summary>
    internal AdapterModuleDict<DoraMagnitude> MagnitudeVectors() => lora_magnitude_vector ??= AdapterModules<DoraMagnitude>("lora_magnitude_vector");

    /// <summary>Keeps a tensor for a later step (PEFT's <c>_cache_store</c>); the layer owns it from now on.</summary>
    internal void CacheStore(string key, Tensor value)
    {
        if (_cache.Remove(key, out Tensor? old)) old.Dispose();
        _cache[key] = value.DetachFromDisposeScope();
    }

    /// <summary>Takes a kept tensor back, or null (PEFT's <c>_cache_pop</c>); the caller owns it.</summary>
    internal Tensor? CachePop(string key) => _cache.Remove(key, out Tensor? value) ? value : null;

    /// <summary>‖W + ΔW‖ over <see cref="NormDim"/>: one norm per output feature (DoRA).</summary>
    public Tensor WeightNorm(Tensor weight, Tensor delta)
    {
        using var sum = weight + delta;
        return torch.linalg.vector_norm(sum, 2, [NormDim]).to(weight.dtype);
    }

    /// <summary>
    /// W ← W + ΔW (a variant merges its own way). On a quantized base, as PEFT's bitsandbytes layers: the weight
    /// is dequantized, the sum computed in float32 and quantized again, so the merged layer is rounded to the
    /// quantization's grid (not exactly the unmerged forward).
    /// </summary>
    protected override void MergeInto(string adapter, bool safeMerge)
    {
        using var scope = NewDisposeScope();
        Tensor weight = BaseWeight.Read();
        Tensor merged = Variant(adapter) is { } variant ? variant.Merge(this, adapter, weight) : weight + DeltaWeight(adapter);
        // Computed aside and checked before the weight changes: a broken adapter leaves it untouched.
        if (safeMerge) EnsureFinite(merged, adapter);
        BaseWeight.Write(merged);
    }

    /// <summary>The exact inverse on a full-precision base; on a quantized one dequantize, subtract, quantize again (rounded, as PEFT).</summary>
    protected override void UnmergeFrom(string adapter)
    {
        using var scope = NewDisposeScope();
        Tensor weight = BaseWeight.Read();
        if (Variant(adapter) is { } variant) BaseWeight.Write(variant.Unmerge(this, adapter, weight));
        else if (BaseWeight.Parameter is { } parameter) parameter.sub_(DeltaWeight(adapter));
        else BaseWeight.Write(weight - DeltaWeight(adapter));
    }

    /// <summary>B·A computed in float32 for half-precision factors (slow half matmuls on CPU), returned in the factors' dtype.</summary>
    public static Tensor Product(Tensor b, Tensor a)
    {
        if (a.dtype is ScalarType.Float16 or ScalarType.BFloat16)
        {
            using Tensor b32 = b.to(ScalarType.Float32), a32 = a.to(ScalarType.Float32), p = b32.matmul(a32);
            return p.to(a.dtype);
        }
        return b.matmul(a);
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            foreach (Tensor t in _cache.Values) t.Dispose();
            _cache.Clear();
        }
        base.Dispose(disposing);
    }

    /// <summary>
    /// Methods combined on one module (contract 1.2, PEFT's mixed model): around another method's layer this one
    /// adds its own delta, computed from the input and the original weight, to that layer's output.
    /// </summary>
    public override string? CannotWrapReason(TunerLayer inner) => null;
}
