using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Abstractions.Layers;

/// <summary>
/// Per-adapter sub-modules of a tuner layer, registered under the adapter's name, so that
/// parameter paths read as PEFT's (<c>lora_A.default.weight</c>).
/// </summary>
/// <remarks>
/// TorchSharp's own <c>ModuleDict</c> registers its entries once, on first use: entries added
/// later (a second adapter, a reloaded one) would be invisible to <c>named_parameters</c>,
/// <c>state_dict</c> and <c>to()</c>. This container registers every entry as it is added.
/// A layer declares it with <see cref="TunerLayer.AdapterModules{T}"/>. It derives from TorchSharp's
/// <c>HookableModule</c> only for that class's constructor taking a native handle (TorchSharp 0.107's plain
/// <c>Module</c> has none, and its name constructor leaks 64 bytes a module); a container runs no forward, so hooks
/// registered on it never run.
/// </remarks>
/// <typeparam name="T">The module type of each entry.</typeparam>
public sealed class AdapterModuleDict<T> : nn.HookableModule<Action, Action>, IAdapterContainer where T : nn.Module
{
    private readonly Dictionary<string, T> _entries = new(StringComparer.Ordinal);

    /// <summary>An empty container.</summary>
    public AdapterModuleDict() : base(NativeCustomModule.Create(nameof(AdapterModuleDict<T>)), IntPtr.Zero) => name = nameof(AdapterModuleDict<T>);

    /// <summary>The module of an adapter.</summary>
    public T this[string adapter] => _entries[adapter];

    /// <summary>The adapters held.</summary>
    public IReadOnlyCollection<string> Keys => _entries.Keys;

    /// <summary>Whether an adapter is held.</summary>
    public bool Contains(string adapter) => _entries.ContainsKey(adapter);

    /// <summary>Adds and registers an adapter's module.</summary>
    public void Add(string adapter, T module)
    {
        _entries.Add(adapter, module);
        register_module(adapter, module);
    }

    /// <summary>Removes an adapter's module and disposes it.</summary>
    public void Remove(string adapter)
    {
        if (!_entries.Remove(adapter, out T? module)) return;
        _internal_submodules.Remove(adapter);
        NativeModuleRelease.Dispose(module);
    }

    /// <summary>Disposes every entry (with the native modules TorchSharp's Linear leaves behind), then the container.</summary>
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            foreach ((string adapter, T module) in _entries)
            {
                _internal_submodules.Remove(adapter);
                NativeModuleRelease.Dispose(module);
            }
            _entries.Clear();
        }
        base.Dispose(disposing);
    }

    /// <summary>The module's parameters and buffers by their names in the module (<c>weight</c>).</summary>
    public IEnumerable<(string Name, Tensor Value)> EntryTensors(string adapter)
    {
        if (!_entries.TryGetValue(adapter, out T? module)) return [];
        return module.named_parameters().Select(p => (p.name, (Tensor)p.parameter)).Concat(module.named_buffers());
    }
}
