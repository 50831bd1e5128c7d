using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Plugins.Lora.Variants;

/// <summary>
/// DoRA (weight-decomposed LoRA, Liu et al., 2024), what its layer variants share: a magnitude vector per
/// adapter (<c>lora_magnitude_vector.&lt;adapter&gt;.weight</c>, initialised to ‖W + ΔW‖ as PEFT's
/// <c>dora_init</c>), and the merge W ← m/‖W + ΔW‖ · (W + ΔW) with its exact inverse, which needs the norm
/// of the weights before the merge (kept in the layer's cache until the unmerge).
/// </summary>
public abstract class DoraVariant : ILoraVariant
{
    /// <inheritdoc />
    public void Init(LoraLayer layer, string adapter)
    {
        using (no_grad())
        {
            using Tensor weight = layer.BaseWeight.Read();
            using Tensor delta = layer.DeltaWeight(adapter);
            using Tensor norm = layer.WeightNorm(weight, delta);
            layer.MagnitudeVectors().Add(adapter, new DoraMagnitude(norm));
        }
    }

    /// <inheritdoc />
    public Tensor Merge(LoraLayer layer, string adapter, Tensor weight)
    {
        using var scope = NewDisposeScope();
        Tensor delta = layer.DeltaWeight(adapter);
        Tensor norm = layer.WeightNorm(weight, delta).detach();
        Tensor merged = Factor(layer, adapter, norm) * (weight + delta);
        layer.CacheStore(NormKey(adapter), norm);
        return scope.MoveToOuter(merged);
    }

    /// <inheritdoc />
    public Tensor Unmerge(LoraLayer layer, string adapter, Tensor weight)
    {
        using var scope = NewDisposeScope();
        Tensor delta = layer.DeltaWeight(adapter);
        using Tensor norm = layer.CachePop(NormKey(adapter))
            ?? throw new InvalidOperationException($"DoRA adapter '{adapter}' was not merged by this layer: no weight norm to unmerge with.");
        Tensor original = weight / Factor(layer, adapter, norm) - delta;
        return scope.MoveToOuter(original);
    }

    /// <inheritdoc />
    public abstract Tensor Forward(LoraLayer layer, string adapter, Tensor x, Tensor result);

    // m / norm, shaped to broadcast against the base weight.
    private static Tensor Factor(LoraLayer layer, string adapter, Tensor norm) => (layer.Magnitude(adapter) / norm).unsqueeze(layer.NormDim);

    private static string NormKey(string adapter) => adapter + "-weight_norm"; // PEFT's cache key
}
