using static TorchSharp.torch;

namespace PeftHost.Plugins.Lora.Variants;

/// <summary>
/// A variant of LoRA on one layer type (PEFT's <c>LoraVariant</c>): how an adapter is set up beyond its
/// factors, how it runs, and how it merges into and out of the base weight. A plain LoRA adapter has no
/// variant and takes the layer's own path, the fast one.
/// </summary>
public interface ILoraVariant
{
    /// <summary>Sets up the adapter's extra state once its factors, dropout and scaling exist (PEFT's <c>init</c>).</summary>
    void Init(LoraLayer layer, string adapter);

    /// <summary>The base weight with the adapter merged in, computed aside (the weight itself is not changed; PEFT's <c>merge_safe</c>).</summary>
    Tensor Merge(LoraLayer layer, string adapter, Tensor weight);

    /// <summary>The base weight with the adapter taken out again, computed aside (PEFT's <c>unmerge</c>).</summary>
    Tensor Unmerge(LoraLayer layer, string adapter, Tensor weight);

    /// <summary>
    /// The layer's output with the adapter's contribution, given the layer's input <paramref name="x"/>
    /// (a linear layer's cast to the factors' dtype; an embedding's token ids) and the output so far
    /// (PEFT's <c>forward</c>).
    /// </summary>
    Tensor Forward(LoraLayer layer, string adapter, Tensor x, Tensor result);
}
