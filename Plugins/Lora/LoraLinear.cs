using PeftHost.Abstractions.Config;
using PeftHost.Abstractions.Layers;
using PeftHost.Plugins.Lora.Variants;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftHost.Plugins.Lora;

/// <summary>
/// LoRA on a linear layer (PEFT's <c>lora.Linear</c>): y = base(x) + B(A(dropout(x))) · scaling,
/// with <c>lora_A.&lt;adapter&gt;.weight</c> [r, in] and <c>lora_B.&lt;adapter&gt;.weight</c> [out, r].
/// DoRA adapters run through <see cref="DoraLinearVariant"/>.
/// </summary>
/// <remarks>
/// The weight layout is [out, in]; <see cref="LoraConv1D"/> reuses everything with the transposed
/// layout of GPT-2's Conv1D (PEFT's <c>fan_in_fan_out</c>).
/// </remarks>
public class LoraLinear : LoraLayer
{
    private readonly AdapterModuleDict<AdapterLinear> lora_A;
    private readonly AdapterModuleDict<AdapterLinear> lora_B;

    /// <summary>Wraps a linear layer (weight [out, in]).</summary>
    public LoraLinear(Linear baseLayer)
        : this(nameof(LoraLinear), baseLayer, baseLayer.weight!.shape[1], baseLayer.weight.shape[0], fanInFanOut: false) { }

    /// <summary>Wraps a linear-like layer whose weight is stored [in, out] when <paramref name="fanInFanOut"/>.</summary>
    protected LoraLinear(string name, nn.Module<Tensor, Tensor> baseLayer, long inFeatures, long outFeatures, bool fanInFanOut)
        : base(name, baseLayer)
    {
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        FanInFanOut = fanInFanOut;
        lora_A = AdapterModules<AdapterLinear>("lora_A");
        lora_B = AdapterModules<AdapterLinear>("lora_B");
    }

    /// <summary>The base layer's input size.</summary>
    public long InFeatures { get; }

    /// <summary>The base layer's output size.</summary>
    public long OutFeatures { get; }

    /// <summary>Whether the base weight is stored [in, out] (GPT-2's Conv1D).</summary>
    public bool FanInFanOut { get; }

    /// <inheritdoc />
    public override int NormDim => FanInFanOut ? 0 : 1;

    /// <inheritdoc />
    protected override ILoraVariant? ResolveVariant(bool useDora) => useDora ? DoraLinearVariant.Instance : null;

    /// <inheritdoc />
    protected override void CreateFactors(string adapter, int r, double scaling, string? init, string path)
    {
        // nn.Linear's initialisation (AdapterLinear's too) is Kaiming-uniform (a = √5), which init_lora_weights=false keeps for both.
        var a = new AdapterLinear(InFeatures, r, hasBias: false, device: BaseWeight.Device, dtype: BaseWeight.DType);
        var b = new AdapterLinear(r, OutFeatures, hasBias: false, device: BaseWeight.Device, dtype: BaseWeight.DType);
        try
        {
            switch (init)
            {
                case null or "false":
                    break;
                case "true":
                    nn.init.kaiming_uniform_(a.weight, a: Math.Sqrt(5));
                    nn.init.zeros_(b.weight);
                    break;
                case "gaussian":
                    nn.init.normal_(a.weight, std: 1.0 / r);
                    nn.init.zeros_(b.weight);
                    break;
                case "olora":
                    using (Tensor weight = BaseWeight.Read()) SetFromBaseWeight(a, b, LoraInit.Olora(OutIn(weight), r, scaling, path));
                    break;
                case "pissa":
                    using (Tensor weight = BaseWeight.Read()) SetFromBaseWeight(a, b, LoraInit.Pissa(OutIn(weight), r, scaling, null, path));
                    break;
                case var s when s.StartsWith("pissa_niter_", StringComparison.Ordinal):
                    using (Tensor weight = BaseWeight.Read())
                        SetFromBaseWeight(a, b, LoraInit.Pissa(OutIn(weight), r, scaling, int.Parse(s["pissa_niter_".Length..], System.Globalization.CultureInfo.InvariantCulture), path));
                    break;
                default:
                    throw new TunerConfigException($"adapter config field 'init_lora_weights': unknown initialisation '{init}'.");
            }
        }
        catch
        {
            a.Dispose();
            b.Dispose();
            throw;
        }
        lora_A.Add(adapter, a);
        lora_B.Add(adapter, b);
    }

    /// <inheritdoc />
    public override (Parameter A, Parameter B) Factors(string adapter) => (lora_A[adapter].weight, lora_B[adapter].weight);

    /// <inheritdoc />
    protected override void SetFactors(string adapter, Tensor a, Tensor b)
    {
        AdapterLinear la = lora_A[adapter], lb = lora_B[adapter];
        Parameter oldA = la.weight, oldB = lb.weight;
        la.weight = new Parameter(a, oldA.requires_grad);
        lb.weight = new Parameter(b, oldB.requires_grad);
        oldA.Dispose();
        oldB.Dispose();
    }

    /// <inheritdoc />
    public override Tensor DeltaWeight(string adapter)
    {
        using var scope = NewDisposeScope();
        Tensor product = Product(lora_B[adapter].weight, lora_A[adapter].weight).mul_(Scaling(adapter));
        return scope.MoveToOuter(FanInFanOut ? product.t().contiguous() : product);
    }

    /// <inheritdoc />
    protected override Tensor ForwardWithAdapters(Tensor input, IReadOnlyList<string> activeAdapters)
    {
        if (activeAdapters.Count == 1 && TryForwardOne(input, activeAdapters[0]) is { } fast) return fast;
        using var scope = NewDisposeScope();
        Tensor result = BaseLayer.forward(input);
        ScalarType resultType = result.dtype;
        foreach (string adapter in activeAdapters)
        {
            AdapterLinear a = lora_A[adapter], b = lora_B[adapter];
            Tensor x = input.dtype == a.weight.dtype ? input : input.to(a.weight.dtype);
            if (Variant(adapter) is { } variant)
            {
                result = variant.Forward(this, adapter, x, result);
                continue;
            }
            AdapterDropout dropout = Dropout(adapter);
            Tensor down = a.forward(dropout.IsIdentity ? x : dropout.forward(x));
            AddUp(result, down, b.weight, Scaling(adapter));
        }
        return scope.MoveToOuter(result.to(resultType));
    }

    /// <summary>
    /// Mixed batch as PEFT's <c>_mixed_batch_forward</c>: the base layer runs once over every row, then each row
    /// adds its own adapter's low-rank term (rows of the base model or of an adapter this layer does not hold add
    /// nothing). A batch of sequences with different adapters thus shares the base matmul. When the rows' adapters
    /// share a rank (and have no dropout), their factors are stacked and every row's term is two batched matmuls
    /// (as punica's BGMV kernels do), instead of two matmuls per adapter; otherwise each group of rows runs on its own.
    /// DoRA adapters take the default path (a group at a time), as their output rescales the base's.
    /// </summary>
    protected override Tensor ForwardMixedBatch(Tensor input, IReadOnlyList<string> rowAdapters)
    {
        if (MergedAdapters.Count > 0 || rowAdapters.Count != input.shape[0] || rowAdapters.Any(a => Adapters.Contains(a) && Variant(a) is not null))
            return base.ForwardMixedBatch(input, rowAdapters);
        using var scope = NewDisposeScope();
        Tensor result = BaseLayer.forward(input);
        (string Name, int Row)[] rows = [.. rowAdapters.Select((name, row) => (name, row)).Where(g => Adapters.Contains(g.name))];
        if (rows.Length == 0) return scope.MoveToOuter(result);
        bool stackable = input.dim() == 3 && rows.All(g => Rank(g.Name) == Rank(rows[0].Name) && Dropout(g.Name).IsIdentity && lora_A[g.Name].weight.dtype == input.dtype);
        if (stackable)
        {
            bool every = rows.Length == input.shape[0];
            Tensor? index = every ? null : tensor(rows.Select(g => (long)g.Row).ToArray(), device: input.device);
            Tensor x = index is null ? input : input.index_select(0, index);
            Tensor a = stack(rows.Select(g => (Tensor)lora_A[g.Name].weight).ToArray()).transpose(1, 2);   // [rows, in, r]
            Tensor b = stack(rows.Select(g => (Tensor)lora_B[g.Name].weight).ToArray()).transpose(1, 2);   // [rows, r, out]
            Tensor down = bmm(x, a);
            double scaling = Scaling(rows[0].Name);
            if (index is null && result.dtype == x.dtype && rows.All(g => Scaling(g.Name) == scaling))
                // Every row adapted at one scale (the usual serving batch): the up-projection, the scale and the sum are one
                // baddbmm, result + scaling · down · b (TorchSharp's instance form: batch1.baddbmm(batch2, input)).
                return scope.MoveToOuter(down.baddbmm(b, result, beta: 1, alpha: (float)scaling));
            Tensor scale = tensor(rows.Select(g => Scaling(g.Name)).ToArray(), dtype: x.dtype, device: x.device).view(-1, 1, 1);
            Tensor up = bmm(down, b).mul_(scale).to(result.dtype);
            if (index is null) result = is_grad_enabled() ? result + up : result.add_(up);
            else result = result.index_add(0, index, up, 1);
            return scope.MoveToOuter(result);
        }
        foreach (var group in rows.GroupBy(g => g.Name))
        {
            AdapterLinear a = lora_A[group.Key], b = lora_B[group.Key];
            using Tensor index = tensor(group.Select(g => (long)g.Row).ToArray(), device: input.device);
            Tensor x = input.index_select(0, index);
            if (x.dtype != a.weight.dtype) x = x.to(a.weight.dtype);
            AdapterDropout dropout = Dropout(group.Key);
            Tensor up = b.forward(a.forward(dropout.IsIdentity ? x : dropout.forward(x))).mul_(Scaling(group.Key));
            result = result.index_add(0, index, up.to(result.dtype), 1);
        }
        return scope.MoveToOuter(result);
    }

    // result += scaling · down · Bᵀ. In place, as one addmm into the base output (a fresh tensor nothing
    // else holds, whose backward does not need it): no [tokens, out] temporary and no separate add pass.
    // The common case (one plain LoRA adapter, no dropout, one dtype) with as few native calls as
    // possible: each costs microseconds, which add up to a percent over a model's adapted layers.
    // Null when the general path is needed.
    private Tensor? TryForwardOne(Tensor input, string adapter)
    {
        if (Variant(adapter) is not null || !Dropout(adapter).IsIdentity) return null;
        Parameter a = lora_A[adapter].weight, b = lora_B[adapter].weight;
        ScalarType type = input.dtype;
        if (a.dtype != type || BaseWeight.DType != type) return null;
        Tensor result = BaseLayer.forward(input);
        using Tensor rows = input.reshape(-1, InFeatures);
        using Tensor down = nn.functional.linear(rows, a);
        using Tensor flat = result.view(-1, OutFeatures);
        using Tensor bt = b.t();
        Release(flat.addmm_(down, bt, beta: 1, alpha: (float)Scaling(adapter)), flat);
        return result;
    }

    private static void AddUp(Tensor result, Tensor down, Tensor b, double scaling)
    {
        if (result.dtype == b.dtype && result.is_contiguous() && down.is_contiguous())
        {
            using Tensor flat = result.view(-1, result.shape[^1]);
            using Tensor rows = down.view(-1, down.shape[^1]);
            using Tensor bt = b.t();
            Release(flat.addmm_(rows, bt, beta: 1, alpha: (float)scaling), flat);
            return;
        }
        using Tensor up = down.matmul(b.t());
        using Tensor cast = up.to(result.dtype);
        Release(result.add_(cast, alpha: scaling), result);
    }

    // An in-place op may hand back the tensor itself or a new wrapper of it: only a new wrapper is ours to dispose.
    private static void Release(Tensor returned, Tensor target)
    {
        if (!ReferenceEquals(returned, target)) returned.Dispose();
    }

    // PEFT's factor initialisations work on the [out, in] weight; a Conv1D's is transposed.
    private Tensor OutIn(Tensor weight) => FanInFanOut ? weight.t() : weight;

    private void SetFromBaseWeight(AdapterLinear a, AdapterLinear b, (Tensor A, Tensor B, Tensor Residual) init)
    {
        using (init.A)
        using (init.B)
        using (init.Residual)
        {
            a.weight.copy_(init.A);
            b.weight.copy_(init.B);
            // The base weight becomes the residual, as PEFT's pissa_init / olora_init (quantized again on a quantized base).
            BaseWeight.Write(FanInFanOut ? init.Residual.t() : init.Residual);
        }
    }
}
