using static TorchSharp.torch;

namespace PeftHost.Abstractions.Layers;

/// <summary>
/// A per-adapter container a <see cref="TunerLayer"/> declares (PEFT's <c>adapter_layer_names</c> and
/// <c>other_param_names</c>): one entry per adapter, keyed by the adapter's name. The layer derives from its
/// containers which adapters it holds, how to delete one, which tensors train, and which tensors an adapter exports.
/// </summary>
public interface IAdapterContainer
{
    /// <summary>The adapters that have an entry.</summary>
    IReadOnlyCollection<string> Keys { get; }

    /// <summary>Whether an adapter has an entry.</summary>
    bool Contains(string adapter);

    /// <summary>Removes an adapter's entry and frees what it owns (no-op when absent).</summary>
    void Remove(string adapter);

    /// <summary>
    /// The tensors of one adapter's entry, named relative to the entry: the parameters and buffers of a
    /// module entry (<c>weight</c>), or the empty name for an entry that is itself a parameter. Empty for
    /// entries that hold no tensor, and for an adapter without an entry.
    /// </summary>
    IEnumerable<(string Name, Tensor Value)> EntryTensors(string adapter);
}
