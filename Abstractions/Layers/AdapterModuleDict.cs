using TorchSharp;
using TorchSharp.Modules;
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
/// </remarks>
/// <typeparam name="T">The module type of each entry.</typeparam>
public sealed class AdapterModuleDict<T> : nn.Module where T : nn.Module
{
    private readonly Dictionary<string, T> _entries = new(StringComparer.Ordinal);

    /// <summary>An empty container.</summary>
    public AdapterModuleDict() : base(nameof(AdapterModuleDict<T>)) { }

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
        module.Dispose();
    }
}

/// <summary>Per-adapter parameters of a tuner layer (<c>ia3_l.default</c>, <c>lora_E.default</c>), registered as they are added.</summary>
public sealed class AdapterParameterDict : nn.Module
{
    private readonly Dictionary<string, Parameter> _entries = new(StringComparer.Ordinal);

    /// <summary>An empty container.</summary>
    public AdapterParameterDict() : base(nameof(AdapterParameterDict)) { }

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
}
