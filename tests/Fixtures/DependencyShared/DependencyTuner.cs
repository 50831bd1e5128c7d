using System.Text.Json.Nodes;
using PeftHost.Abstractions.Config;
using PeftHost.Abstractions.Plugins;
using PeftHost.Abstractions.State;
using PeftHost.Abstractions.Surgery;
using PeftHost.Abstractions.Tuning;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

#if DEPENDENCY_V1
[assembly: PeftTuner("DEPENDENCY_V1", typeof(Dependency.DependencyTuner))]
#else
[assembly: PeftTuner("DEPENDENCY_V2", typeof(Dependency.DependencyTuner))]
#endif

namespace Dependency;

/// <summary>Its adapters are one parameter outside the model, set from its own version of ConflictingDependency.</summary>
public sealed class DependencyTuner : ITuner
{
#if DEPENDENCY_V1
    public const string Type = "DEPENDENCY_V1";
#else
    public const string Type = "DEPENDENCY_V2";
#endif

    public string PeftType => Type;

    public TunerConfig ParseConfig(JsonObject json) => new DependencyConfig(json);

    public ITunerModel Attach(ModelSurgeon model, TunerContext context) => new DependencyModel();
}

public sealed class DependencyConfig(JsonObject json) : TunerConfig(DependencyTuner.Type, new ConfigFields(json))
{
    protected override void WriteFields(JsonObject json) { }
}

public sealed class DependencyModel : ITunerModel
{
    private readonly Dictionary<string, (DependencyConfig Config, Parameter Value)> _adapters = new(StringComparer.Ordinal);

    public IReadOnlyList<string> Adapters => [.. _adapters.Keys];

    public IReadOnlyList<string> ActiveAdapters { get; private set; } = [];

    public bool Enabled { get; set; } = true;

    public bool CanMerge => false;

    public IReadOnlyList<string> MergedAdapters => [];

#if DEPENDENCY_V1
    private static double Factor => ConflictingDependency.Scale.Factor;
#else
    // A member only version 2 has: binding to version 1 would fail here.
    private static double Factor => ConflictingDependency.Scale.Describe() == "version 2" ? ConflictingDependency.Scale.Factor : double.NaN;
#endif

    public void AddAdapter(string name, TunerConfig config) =>
        _adapters.Add(name, ((DependencyConfig)config, new Parameter(torch.full(1, Factor))));

    public void ImportAdapter(AdapterState state) => AddAdapter(state.Name, new DependencyConfig(state.Config));

    public AdapterState ExportAdapter(string name) =>
        new(name, _adapters[name].Config.ToJson(), new Dictionary<string, Tensor> { ["factor"] = _adapters[name].Value.detach().clone() });

    public void DeleteAdapter(string name)
    {
        if (_adapters.Remove(name, out var a)) a.Value.Dispose();
    }

    public void SetActiveAdapters(IReadOnlyList<string> names) => ActiveAdapters = [.. names];

    public void Merge(IReadOnlyList<string> adapters, bool safeMerge) => throw new NotSupportedException("nothing to merge");

    public void Unmerge() { }

    public IEnumerable<(string Name, Parameter Parameter)> NamedParameters() => _adapters.Select(a => ($"dependency.{a.Key}.factor", a.Value.Value));

    public void Detach()
    {
        foreach (var a in _adapters.Values) a.Value.Dispose();
        _adapters.Clear();
    }

    public void Dispose() => Detach();
}
