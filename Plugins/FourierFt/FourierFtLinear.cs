using PeftHost.Abstractions.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftHost.Plugins.FourierFt;

/// <summary>
/// FourierFT on a linear layer or GPT-2's Conv1D (PEFT's <c>FourierFTLinear</c>): per adapter n trainable
/// coefficients <c>fourierft_spectrum.&lt;adapter&gt;</c> at fixed random frequencies; ΔW [out, in] is the real part
/// of the inverse 2-D DFT of the sparse spectrum times the scaling, and y = base(x) + x ΔWᵀ. Several active
/// adapters each add their term.
/// </summary>
/// <remarks>
/// The frequency locations are not saved: they follow from <c>random_loc_seed</c> (PEFT's
/// <c>torch.randperm(out * in, generator=torch.Generator().manual_seed(seed))[:n]</c>; TorchSharp's CPU
/// generator and randperm give torch 1.13's permutation). A Conv1D merges ΔWᵀ, its own layout (PEFT 0.13.2
/// adds ΔW untransposed there, a shape error or a wrong merge; the unmerged forward, which PEFT gets right,
/// is what the merge must equal).
/// </remarks>
public sealed class FourierFtLinear : TunerLayer
{
    private readonly AdapterParameterDict fourierft_spectrum;
    private readonly AdapterValueDict<double> fourierft_scaling;
    private readonly AdapterValueDict<long> fourierft_random_loc_seed;
    private readonly AdapterValueDict<Tensor> indices;

    /// <summary>Wraps a Linear (weight [out, in]).</summary>
    public FourierFtLinear(Linear baseLayer) : this(baseLayer, baseLayer.weight!.shape[1], baseLayer.weight.shape[0], fanInFanOut: false) { }

    /// <summary>Wraps a Conv1D (weight [in, out]; PEFT's <c>fan_in_fan_out</c>).</summary>
    public FourierFtLinear(Conv1D baseLayer) : this(baseLayer, baseLayer.InFeatures, baseLayer.OutFeatures, fanInFanOut: true) { }

    private FourierFtLinear(nn.Module<Tensor, Tensor> baseLayer, long inFeatures, long outFeatures, bool fanInFanOut)
        : base(nameof(FourierFtLinear), baseLayer)
    {
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        FanInFanOut = fanInFanOut;
        fourierft_spectrum = AdapterParameters("fourierft_spectrum");
        fourierft_scaling = AdapterValues<double>("fourierft_scaling");
        fourierft_random_loc_seed = AdapterValues<long>("fourierft_random_loc_seed");
        indices = AdapterValues<Tensor>("indices");
    }

    /// <summary>The base layer's input size.</summary>
    public long InFeatures { get; }

    /// <summary>The base layer's output size.</summary>
    public long OutFeatures { get; }

    /// <summary>Whether the base weight is stored [in, out] (Conv1D).</summary>
    public bool FanInFanOut { get; }

    // Read from the base layer each time: moving the model to another dtype or device replaces its parameters.
    private Parameter Weight => GetBaseLayer() is Linear l ? l.weight! : ((Conv1D)GetBaseLayer()).weight;

    /// <summary>The base layer's bias (what <c>bias: fourier_only</c> trains), if any.</summary>
    public Parameter? Bias => GetBaseLayer() switch
    {
        Linear l => l.bias,
        Conv1D c => c.bias,
        _ => null,
    };

    // The frequency locations PEFT draws for a layer of out x in: the first n entries of a seeded random
    // permutation of out·in, as flat indices row·in + column (PEFT keeps them as rows = idx // in, cols = idx % in).
    private static Tensor Locations(long outFeatures, long inFeatures, int n, long seed)
    {
        using var generator = new Generator((ulong)seed, CPU);
        using Tensor permutation = randperm(outFeatures * inFeatures, generator: generator);
        return permutation.narrow(0, 0, n).clone();
    }

    /// <summary>
    /// PEFT's <c>update_layer</c>: the spectrum [n] from the global RNG (standard normal), zeros with
    /// <paramref name="initWeights"/>; the locations from <paramref name="seed"/>.
    /// </summary>
    /// <exception cref="Abstractions.Config.TunerConfigException">n is larger than out · in.</exception>
    public void AddAdapter(string adapter, int n, double scaling, long seed, bool initWeights, string path)
    {
        if (n > InFeatures * OutFeatures)
            throw new Abstractions.Config.TunerConfigException($"adapter config field 'n_frequency': `n_frequency` should be less than or equal to the product of the input and output dimensions but the value passed is {n} and the product is {InFeatures * OutFeatures} (module '{path}').");
        Parameter weight = Weight;
        Tensor locations = Locations(OutFeatures, InFeatures, n, seed);
        using (no_grad())
        {
            using Tensor spectrum = initWeights ? zeros(n, dtype: weight.dtype, device: weight.device) : randn(n, dtype: weight.dtype, device: weight.device);
            fourierft_spectrum.Add(adapter, new Parameter(spectrum));
        }
        indices[adapter] = locations.device_type == weight.device_type ? locations : MoveTo(locations, weight.device);
        fourierft_scaling[adapter] = scaling;
        fourierft_random_loc_seed[adapter] = seed;
    }

    /// <summary>PEFT's <c>get_delta_weight</c>: real(ifft2(dense spectrum)) · scaling, [out, in].</summary>
    public Tensor DeltaWeight(string adapter)
    {
        using var scope = NewDisposeScope();
        Parameter spectrum = fourierft_spectrum[adapter];
        Tensor flat = indices[adapter];
        if (flat.device_type != spectrum.device_type || flat.device_index != spectrum.device_index) flat = flat.to(spectrum.device);
        // The locations are a permutation's prefix, so a scatter into zeros is PEFT's dense[rows, cols] = spectrum.
        Tensor dense = zeros(OutFeatures * InFeatures, dtype: spectrum.dtype, device: spectrum.device).scatter(0, flat, spectrum).view(OutFeatures, InFeatures);
        Tensor delta = fft.ifft2(dense).real * fourierft_scaling[adapter];
        return scope.MoveToOuter(delta);
    }

    /// <inheritdoc />
    protected override Tensor ForwardWithAdapters(Tensor input, IReadOnlyList<string> activeAdapters)
    {
        using var scope = NewDisposeScope();
        Tensor result = BaseLayer.forward(input);
        ScalarType resultType = result.dtype;
        Tensor x = input;
        foreach (string adapter in activeAdapters)
        {
            Tensor delta = DeltaWeight(adapter);
            if (x.dtype != delta.dtype) x = x.to(delta.dtype);
            result = result + nn.functional.linear(x, delta);
        }
        return scope.MoveToOuter(result.to(resultType));
    }

    /// <summary>W += ΔW in the base weight's layout (ΔWᵀ for a Conv1D; see the remarks).</summary>
    protected override void MergeInto(string adapter, bool safeMerge)
    {
        using Tensor delta = DeltaInLayout(adapter);
        Parameter weight = Weight;
        if (safeMerge)
        {
            using Tensor merged = weight.add(delta);
            EnsureFinite(merged, adapter);
            weight.copy_(merged);
        }
        else weight.add_(delta);
    }

    /// <summary>W -= ΔW, the inverse of <see cref="MergeInto"/>.</summary>
    protected override void UnmergeFrom(string adapter)
    {
        using Tensor delta = DeltaInLayout(adapter);
        Weight.sub_(delta);
    }

    /// <inheritdoc />
    public override void DeleteAdapter(string adapter)
    {
        if (indices.TryGetValue(adapter, out Tensor? locations)) locations.Dispose();
        base.DeleteAdapter(adapter);
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing)
            foreach (string adapter in indices.Keys.ToList()) DeleteAdapter(adapter);
        base.Dispose(disposing);
    }

    private Tensor DeltaInLayout(string adapter)
    {
        using var scope = NewDisposeScope();
        Tensor delta = DeltaWeight(adapter);
        if (FanInFanOut) delta = delta.t();
        return scope.MoveToOuter(delta.to(Weight.dtype).contiguous());
    }

    private static Tensor MoveTo(Tensor t, Device device)
    {
        using (t) return t.to(device);
    }

    /// <summary>
    /// Methods combined on one module (contract 1.2, PEFT's mixed model): around another method's layer this one
    /// adds its own delta, computed from the input and the original weight, to that layer's output.
    /// </summary>
    public override string? CannotWrapReason(TunerLayer inner) => null;
}
