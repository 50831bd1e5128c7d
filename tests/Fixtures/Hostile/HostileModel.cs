using System.Text.Json.Nodes;
using PeftHost.Abstractions.Config;
using PeftHost.Abstractions.State;
using PeftHost.Abstractions.Surgery;
using PeftHost.Abstractions.Tuning;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Hostile;

/// <summary>
/// A complete tuner model written against the contract's interfaces, each member of which throws when the test
/// names it (<see cref="Fault"/>). Tensors are keyed "PATH.scale".
/// </summary>
public sealed class HostileModel(ModelSurgeon model) : ITunerModel, IHotswapModel
{
    private readonly Dictionary<string, HostileLayer> _layers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, HostileConfig> _configs = new(StringComparer.Ordinal);
    private readonly List<string> _order = [];
    private List<string> _active = [];
    private bool _enabled = true;

    public IReadOnlyList<string> Adapters
    {
        get
        {
            Fault.At("Adapters");
            return [.. _order];
        }
    }

    public IReadOnlyList<string> ActiveAdapters
    {
        get
        {
            Fault.At("ActiveAdapters");
            return [.. _active];
        }
    }

    public bool Enabled
    {
        get
        {
            Fault.At("Enabled.get");
            return _enabled;
        }
        set
        {
            Fault.At("Enabled.set");
            _enabled = value;
            foreach (HostileLayer l in _layers.Values) l.Enabled = value;
        }
    }

    public bool CanMerge
    {
        get
        {
            Fault.At("CanMerge");
            return true;
        }
    }

    public IReadOnlyList<string> MergedAdapters
    {
        get
        {
            Fault.At("MergedAdapters");
            return [.. _layers.Values.SelectMany(l => l.Merged).Distinct()];
        }
    }

    public void AddAdapter(string name, TunerConfig config)
    {
        Fault.At("AddAdapter");
        Add(name, (HostileConfig)config);
    }

    public void ImportAdapter(AdapterState state)
    {
        Fault.At("ImportAdapter");
        Add(state.Name, new HostileConfig(state.Config));
        try
        {
            AdapterTensorCopy.CopyChecked(state.Name, _layers.Where(l => l.Value.Adapters.Contains(state.Name)).Select(l => KeyValuePair.Create(l.Key + ".scale", (Tensor)l.Value.Scale(state.Name))), state.Tensors);
        }
        catch
        {
            Remove(state.Name);
            throw;
        }
    }

    public AdapterState ExportAdapter(string name)
    {
        Fault.At("ExportAdapter");
        HostileConfig config = _configs[name];
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach ((string path, HostileLayer layer) in _layers)
        {
            if (!layer.Adapters.Contains(name)) continue;
            Tensor value = layer.Scale(name).detach().clone();
            tensors[path + ".scale"] = config.Export switch
            {
                "shape" => torch.cat([value, value]),         // [2] where the layer holds [1]
                "dtype" => value.to(ScalarType.Int64),        // integers for a float parameter
                "complex" => value.to(ScalarType.ComplexFloat32), // a dtype no adapter file can hold
                _ => value,
            };
        }
        return new AdapterState(name, config.ToJson(), tensors);
    }

    public void DeleteAdapter(string name)
    {
        Fault.At("DeleteAdapter");
        if (!_configs.ContainsKey(name)) throw new KeyNotFoundException($"No adapter named '{name}'.");
        Remove(name);
    }

    public void SetActiveAdapters(IReadOnlyList<string> names)
    {
        Fault.At("SetActiveAdapters");
        _active = [.. names];
        foreach (HostileLayer l in _layers.Values) l.Active = _active;
    }

    public void Merge(IReadOnlyList<string> adapters, bool safeMerge)
    {
        Fault.At("Merge");
        using (no_grad())
            foreach (HostileLayer layer in _layers.Values)
                foreach (string a in adapters.Where(a => layer.Adapters.Contains(a) && !layer.Merged.Contains(a)))
                {
                    var linear = (Linear)layer.BaseLayer;
                    linear.weight!.mul_(layer.Scale(a));
                    linear.bias?.mul_(layer.Scale(a));
                    layer.Merged.Add(a);
                }
    }

    public void Unmerge()
    {
        Fault.At("Unmerge");
        using (no_grad())
            foreach (HostileLayer layer in _layers.Values)
            {
                foreach (string a in layer.Merged)
                {
                    var linear = (Linear)layer.BaseLayer;
                    linear.weight!.div_(layer.Scale(a));
                    linear.bias?.div_(layer.Scale(a));
                }
                layer.Merged.Clear();
            }
    }

    public IEnumerable<(string Name, Parameter Parameter)> NamedParameters()
    {
        Fault.At("NamedParameters");
        return [];
    }

    public void PrepareForHotswap(int targetRank) => Fault.At("PrepareForHotswap");

    public void Hotswap(string adapter, AdapterState state)
    {
        Fault.At("Hotswap");
        var targets = _layers.Where(l => l.Value.Adapters.Contains(adapter)).Select(l => KeyValuePair.Create(l.Key + ".scale", (Tensor)l.Value.Scale(adapter)));
        AdapterTensorCopy.CopyChecked(adapter, targets, state.Tensors);
    }

    public void Detach()
    {
        Fault.At("Detach");
        foreach (string path in _layers.Keys.ToList())
        {
            model.Restore(path);
            _layers.Remove(path, out HostileLayer? layer);
            layer!.Dispose();
        }
        _configs.Clear();
        _order.Clear();
        _active = [];
    }

    public void Dispose() => Detach();

    private void Add(string name, HostileConfig config)
    {
        if (_configs.ContainsKey(name)) throw new ArgumentException($"An adapter named '{name}' already exists.", nameof(name));
        // A module wrapped already (for another adapter) is found as the wrapper; its base layer is not a target again.
        var paths = model.NamedModules().Where(m => m.Module is Linear or HostileLayer && !m.Path.Contains(".base_layer", StringComparison.Ordinal)
            && config.Targets.Contains(m.Path.Split('.')[^1])).Select(m => m.Path).ToList();
        if (paths.Count == 0) throw new TunerConfigException($"Adapter '{name}': target_modules {string.Join(", ", config.Targets)} matched no Linear module.");
        foreach (string path in paths)
        {
            if (!_layers.TryGetValue(path, out HostileLayer? layer))
            {
                layer = new HostileLayer((nn.Module<Tensor, Tensor>)model.Get(path)) { Active = _active, Enabled = _enabled };
                model.Replace(path, layer);
                _layers[path] = layer;
            }
            layer.Add(name, config.InitScale, config.Forward == "nan");
        }
        _configs[name] = config;
        _order.Add(name);
        if (_active.Count == 0) SetActiveAdapters([name]);
    }

    private void Remove(string name)
    {
        foreach ((string path, HostileLayer layer) in _layers.ToList())
        {
            if (!layer.Adapters.Contains(name)) continue;
            layer.Remove(name);
            if (layer.Adapters.Count > 0) continue;
            model.Restore(path);
            _layers.Remove(path);
            layer.Dispose();
        }
        _configs.Remove(name);
        _order.Remove(name);
        _active.Remove(name);
    }
}
