using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftHost.Abstractions.Layers;

/// <summary>
/// Per-adapter parameters of a tuner layer (<c>ia3_l.default</c>, <c>lora_E.default</c>), registered as
/// they are added. A layer declares it with <see cref="TunerLayer.AdapterParameters"/>.
/// </summary>
/// <remarks>
/// It derives from TorchSharp's <c>HookableModule</c> only for that class's constructor taking a native handle
/// (<see cref="NativeCustomModule"/>: TorchSharp 0.107's name constructor leaks 64 bytes a module); a container runs
/// no forward, so hooks registered on it never run.
/// </remarks>
public sealed class AdapterParameterDict : nn.HookableModule<Action, Action>, IAdapterContainer
{
    private readonly Dictionary<string, Parameter> _entries = new(StringComparer.Ordinal);

    /// <summary>An empty container.</summary>
    public AdapterParameterDict() : base(NativeCustomModule.Create(nameof(AdapterParameterDict)), IntPtr.Zero) => name = nameof(AdapterParameterDict);

    /// <summary>The parameter of an adapter.</summary>
    public Parameter this[string adapter] => _entries[adapter];

    /// <summary>The adapters held.</summary>
    public IReadOnlyCollection<string> Keys => _entries.Keys;

    /// <summary>Whether an adapter is held.</summary>
    public bool Contains(string adapter) => _entries.ContainsKey(adapter);

    /// <summary>Adds and registers an adapter's parameter.</summary>
    public void Add(string adapter, Parameter parameter)
    {
        _entries.Add(adapter, parameter);
        register_parameter(adapter, parameter);
    }

    /// <summary>Removes an adapter's parameter and disposes it.</summary>
    public void Remove(string adapter)
    {
        if (!_entries.Remove(adapter, out Parameter? parameter)) return;
        _internal_params.Remove(adapter);
        parameter.Dispose();
    }

    /// <summary>The adapter's parameter, under the empty name (the entry is the tensor).</summary>
    public IEnumerable<(string Name, Tensor Value)> EntryTensors(string adapter) =>
        _entries.TryGetValue(adapter, out Parameter? p) ? [("", p)] : [];
}
