using System.Text.Json.Nodes;
using PeftHost.Abstractions.Config;
using PeftHost.Abstractions.Layers;
using PeftHost.Abstractions.State;
using PeftHost.Abstractions.Surgery;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Engine.Peft;

/// <summary>
/// PEFT's <c>modules_to_save</c> on one model: the whole modules an adapter's config names (a
/// classification head, an lm_head), each wrapped once by a <see cref="ModulesToSaveWrapper"/> that holds
/// a trainable copy per adapter. Owns the wrappers and the surgery that put them in; the PEFT model hands
/// it each adapter's config and tensors and tells it which adapter is active.
/// </summary>
internal sealed class ModulesToSave : IDisposable
{
    // PEFT's PeftModelForSequenceClassification: its classification head joins modules_to_save.
    private static readonly string[] SequenceClassificationHeads = ["classifier", "score"];

    private readonly ModelSurgeon _surgeon;
    private readonly Dictionary<string, ModulesToSaveWrapper> _wrappers = new(StringComparer.Ordinal);
    private bool _enabled = true;

    /// <summary>Works on <paramref name="model"/>, the PEFT model's base.</summary>
    public ModulesToSave(nn.Module model) => _surgeon = new ModelSurgeon(model);

    /// <summary>The config with PEFT's task heads added to <c>modules_to_save</c> (task_type SEQ_CLS); the config itself when nothing is added.</summary>
    public static JsonObject WithTaskHeads(JsonObject config)
    {
        if (TaskType(config) != "SEQ_CLS") return config;
        JsonObject copy = (JsonObject)config.DeepClone();
        var list = copy["modules_to_save"] as JsonArray ?? new JsonArray();
        foreach (string head in SequenceClassificationHeads)
            if (!Names(copy).Contains(head)) list.Add(head);
        copy["modules_to_save"] = list;
        return copy;
    }

    /// <summary>
    /// Splits an adapter's tensors into the tuner's and those of the module copies its config names
    /// (under the copied modules' own paths).
    /// </summary>
    public (Dictionary<string, Tensor> Tuner, Dictionary<string, Tensor> Copies) Split(JsonObject config, IReadOnlyDictionary<string, Tensor> tensors)
    {
        IReadOnlyList<string> paths = PathsOf(config);
        bool Owned(string key) => paths.Any(p => key.StartsWith(p + ".", StringComparison.Ordinal));
        return (tensors.Where(t => !Owned(t.Key)).ToDictionary(t => t.Key, t => t.Value, StringComparer.Ordinal),
                tensors.Where(t => Owned(t.Key)).ToDictionary(t => t.Key, t => t.Value, StringComparer.Ordinal));
    }

    /// <summary>
    /// Wraps (or extends) every module the adapter's config names with a copy for the adapter; with
    /// <paramref name="tensors"/>, fills the copies from them. All or nothing.
    /// </summary>
    /// <exception cref="ArgumentException">The config names modules the model does not have, or that cannot be wrapped.</exception>
    /// <exception cref="InvalidDataException">A tensor of a copy is missing or has another shape.</exception>
    public void Add(string adapter, JsonObject config, IReadOnlyDictionary<string, Tensor>? tensors)
    {
        var added = new List<ModulesToSaveWrapper>();
        try
        {
            IReadOnlyList<string> paths = PathsOf(config);
            if (config["modules_to_save"] is JsonArray { Count: > 0 } && paths.Count == 0 && TaskType(config) != "SEQ_CLS")
                throw new ArgumentException($"Adapter '{adapter}': modules_to_save {config["modules_to_save"]!.ToJsonString()} matched no module of the model.");
            foreach (string path in paths)
            {
                if (!_wrappers.TryGetValue(path, out ModulesToSaveWrapper? wrapper))
                {
                    var original = _surgeon.Get(path) as nn.Module<Tensor, Tensor>
                        ?? throw new ArgumentException($"modules_to_save: '{path}' is not a Module<Tensor, Tensor>.");
                    wrapper = new ModulesToSaveWrapper(original, path) { Disabled = !_enabled };
                    _surgeon.Replace(path, wrapper);
                    _wrappers[path] = wrapper;
                }
                wrapper.AddAdapter(adapter);
                added.Add(wrapper);
            }
            if (tensors is not null) Fill(adapter, added, tensors);
        }
        catch
        {
            foreach (ModulesToSaveWrapper w in added) DeleteFrom(w, adapter);
            throw;
        }
    }

    /// <summary>Adds CPU copies of the adapter's module copies, by the original modules' keys, to <paramref name="into"/>.</summary>
    public void Export(string adapter, Dictionary<string, Tensor> into)
    {
        using (no_grad())
            foreach (ModulesToSaveWrapper w in Of(adapter))
                foreach ((string key, Tensor value) in w.AdapterTensors(adapter))
                {
                    // The detached handle and the moved one are freed now, not left to the finalizer.
                    using Tensor detached = value.detach();
                    using Tensor onCpu = detached.to(CPU);
                    into[key] = onCpu.clone();
                }
    }

    /// <summary>Whether the adapter has copies of any module.</summary>
    public bool Holds(string adapter) => _wrappers.Values.Any(w => w.Adapters.Contains(adapter));

    /// <summary>The paths of the modules the adapter holds copies of.</summary>
    public IReadOnlyList<string> CopiedPaths(string adapter) => [.. Of(adapter).Select(w => w.Path).Order(StringComparer.Ordinal)];

    /// <summary>The keys of the adapter's copies' tensors.</summary>
    public IReadOnlySet<string> KeysOf(string adapter) => Of(adapter).SelectMany(w => w.AdapterTensors(adapter)).Select(t => t.Key).ToHashSet(StringComparer.Ordinal);

    /// <summary>Copies tensors into the adapter's existing copies (a hotswap), checked first: all or nothing.</summary>
    /// <exception cref="InvalidDataException">A tensor is missing or has another shape.</exception>
    public void Fill(string adapter, IReadOnlyDictionary<string, Tensor> tensors) => Fill(adapter, Of(adapter), tensors);

    /// <summary>Sets whether the adapter's copies train.</summary>
    public void SetTrainable(string adapter, bool trainable)
    {
        foreach (ModulesToSaveWrapper w in Of(adapter))
            foreach (var (_, p) in w.CopyOf(adapter).named_parameters()) p.requires_grad = trainable;
    }

    /// <summary>Removes the adapter's copies (and the wrappers nobody else uses).</summary>
    public void Delete(string adapter)
    {
        foreach (ModulesToSaveWrapper w in Of(adapter)) DeleteFrom(w, adapter);
    }

    /// <summary>When false, the original modules serve (adapters disabled).</summary>
    public bool Enabled
    {
        get => _enabled;
        set
        {
            _enabled = value;
            foreach (ModulesToSaveWrapper w in _wrappers.Values) w.Disabled = !value;
        }
    }

    /// <summary>Each wrapper serves the first of <paramref name="active"/> it holds a copy for (the original when none).</summary>
    public void SetActive(IReadOnlyList<string> active)
    {
        foreach (ModulesToSaveWrapper w in _wrappers.Values) w.ActiveAdapter = active.FirstOrDefault(w.Adapters.Contains);
    }

    /// <summary>
    /// Puts the original modules back. With <paramref name="keepActiveCopies"/> (PEFT's <c>merge_and_unload</c>),
    /// each original first takes the weights of the copy that serves now.
    /// </summary>
    public void Unload(bool keepActiveCopies)
    {
        foreach (ModulesToSaveWrapper w in _wrappers.Values.ToList())
        {
            if (keepActiveCopies && w.ActiveAdapter is { } a && w.Adapters.Contains(a)) CopyInto(w.CopyOf(a), w.Original);
            Remove(w);
        }
    }

    /// <summary>Puts the original modules back and frees the copies.</summary>
    public void Dispose() => Unload(keepActiveCopies: false);

    private List<ModulesToSaveWrapper> Of(string adapter) => _wrappers.Values.Where(w => w.Adapters.Contains(adapter)).ToList();

    // The module paths a config's modules_to_save selects (a path equal to a name or ending in ".name").
    private IReadOnlyList<string> PathsOf(JsonObject config)
    {
        List<string> wanted = Names(config);
        if (wanted.Count == 0) return [];
        return _surgeon.NamedModules()
            .Where(m => m.Module is not TunerLayer && !m.Path.Contains(".modules_to_save.") && !m.Path.Contains(".original_module")
                        && wanted.Any(n => m.Path == n || m.Path.EndsWith("." + n, StringComparison.Ordinal)))
            .Select(m => m.Path).ToList();
    }

    private static void Fill(string adapter, List<ModulesToSaveWrapper> wrappers, IReadOnlyDictionary<string, Tensor> tensors) =>
        AdapterTensorCopy.CopyChecked(adapter, wrappers.SelectMany(w => w.AdapterTensors(adapter)).Select(t => KeyValuePair.Create(t.Key, t.Value)), tensors);

    private void DeleteFrom(ModulesToSaveWrapper wrapper, string adapter)
    {
        wrapper.DeleteAdapter(adapter);
        if (wrapper.Adapters.Count == 0) Remove(wrapper);
    }

    private void Remove(ModulesToSaveWrapper wrapper)
    {
        _surgeon.Restore(wrapper.Path);
        _wrappers.Remove(wrapper.Path);
        wrapper.Dispose();
    }

    private static void CopyInto(nn.Module from, nn.Module to)
    {
        using (no_grad())
        {
            var target = to.named_parameters().ToDictionary(p => p.name, p => p.parameter);
            foreach (var (n, p) in from.named_parameters()) target[n].copy_(p);
        }
    }

    // The host reads these two fields before the tuner parses the config: a value of another type is the config's error, named.
    private static string? TaskType(JsonObject config) => config["task_type"] switch
    {
        null => null,
        JsonValue v when v.TryGetValue(out string? t) => t,
        JsonNode other => throw new TunerConfigException($"task_type must be a string such as \"CAUSAL_LM\" or \"SEQ_CLS\", not {other.ToJsonString()}."),
    };

    /// <summary>The module names an adapter config's <c>modules_to_save</c> lists (empty when none).</summary>
    /// <exception cref="TunerConfigException">The field is not a list of strings.</exception>
    public static List<string> Names(JsonObject config) => config["modules_to_save"] switch
    {
        null => [],
        JsonArray names => [.. names.Select(n => n is JsonValue v && v.TryGetValue(out string? name) ? name
            : throw new TunerConfigException($"modules_to_save must list module names (strings); it holds {n?.ToJsonString() ?? "null"}.")).Where(n => n.Length > 0)],
        JsonNode other => throw new TunerConfigException($"modules_to_save must be a list of module names, not {other.ToJsonString()}."),
    };
}
