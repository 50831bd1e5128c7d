using static TorchSharp.torch;

namespace PeftHost.Abstractions.Layers;

/// <summary>
/// Per-adapter settings of a tuner layer that are not tensors (PEFT's <c>other_param_names</c>: <c>r</c>,
/// <c>lora_alpha</c>, <c>scaling</c>). They are not saved: they follow from the adapter's config, which
/// sets them again on import. A layer declares it with <see cref="TunerLayer.AdapterValues{T}"/>.
/// </summary>
/// <typeparam name="T">The value type.</typeparam>
public sealed class AdapterValueDict<T> : IAdapterContainer
{
    private readonly Dictionary<string, T> _entries = new(StringComparer.Ordinal);

    /// <summary>The value of an adapter.</summary>
    /// <exception cref="KeyNotFoundException">The adapter has no value here.</exception>
    public T this[string adapter]
    {
        get => _entries[adapter];
        set => _entries[adapter] = value;
    }

    /// <summary>The adapters that have a value.</summary>
    public IReadOnlyCollection<string> Keys => _entries.Keys;

    /// <summary>Whether an adapter has a value.</summary>
    public bool Contains(string adapter) => _entries.ContainsKey(adapter);

    /// <summary>The value of an adapter, when it has one.</summary>
    public bool TryGetValue(string adapter, out T value)
    {
        bool found = _entries.TryGetValue(adapter, out T? v);
        value = v!;
        return found;
    }

    /// <summary>Removes an adapter's value (no-op when absent).</summary>
    public void Remove(string adapter) => _entries.Remove(adapter);

    /// <summary>Values are not tensors: always empty.</summary>
    public IEnumerable<(string Name, Tensor Value)> EntryTensors(string adapter) => [];
}
