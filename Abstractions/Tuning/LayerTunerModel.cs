using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using PeftHost.Abstractions.Config;
using PeftHost.Abstractions.Layers;
using PeftHost.Abstractions.State;
using PeftHost.Abstractions.Surgery;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Abstractions.Tuning;

/// <summary>
/// The common body of tuners that inject wrapper layers into target modules (PEFT's
/// <c>BaseTuner</c>): target selection, injection through <see cref="ModelSurgeon"/>, adapters
/// keyed by name, export/import by PEFT key names, PEFT's trainable flags, and exact detach. A tuner
/// supplies which modules it supports and how to build and extend its layer; the config is parsed by
/// the tuner passed to the constructor.
/// </summary>
/// <typeparam name="TConfig">The tuner's config.</typeparam>
/// <typeparam name="TLayer">The tuner's layer.</typeparam>
public abstract class LayerTunerModel<TConfig, TLayer> : ITunerModel
    where TConfig : TargetedTunerConfig
    where TLayer : TunerLayer
{
    private readonly List<string> _adapterOrder = [];
    private readonly Dictionary<string, TConfig> _configs = new(StringComparer.Ordinal);
    private readonly Dictionary<string, TLayer> _layers = new(StringComparer.Ordinal);
    private IReadOnlyList<string> _active = [];
    private bool _enabled = true;
    private readonly ITuner? _tuner;

    /// <summary>Attaches to a model; the config is parsed by <see cref="ParseConfig"/>, which must then be overridden (contract 1.0).</summary>
    protected LayerTunerModel(ModelSurgeon model, TunerContext context)
    {
        Model = model;
        Context = context;
    }

    /// <summary>Attaches to a model; configs are parsed by <paramref name="tuner"/> (its <see cref="ITuner.ParseConfig"/> must return a <typeparamref name="TConfig"/>).</summary>
    protected LayerTunerModel(ModelSurgeon model, TunerContext context, ITuner tuner) : this(model, context)
    {
        ArgumentNullException.ThrowIfNull(tuner);
        _tuner = tuner;
    }

    /// <summary>The model being tuned.</summary>
    protected ModelSurgeon Model { get; }

    /// <summary>The host's context (logger).</summary>
    protected TunerContext Context { get; }

    /// <summary>The injected layers by module path.</summary>
    protected IReadOnlyDictionary<string, TLayer> Layers => _layers;

    /// <inheritdoc />
    public IReadOnlyList<string> Adapters => _adapterOrder;

    /// <inheritdoc />
    public IReadOnlyList<string> ActiveAdapters => _active;

    /// <summary>Replaces the config kept for an adapter (after its weights were swapped in place).</summary>
    protected void ReplaceConfig(string adapter, TConfig config)
    {
        if (!_configs.ContainsKey(adapter)) throw new KeyNotFoundException($"No adapter named '{adapter}'.");
        _configs[adapter] = config;
    }

    /// <summary>The config of an adapter.</summary>
    public TConfig GetConfig(string adapter) =>
        _configs.TryGetValue(adapter, out TConfig? c) ? c : throw new KeyNotFoundException($"No adapter named '{adapter}'.");

    /// <inheritdoc />
    public bool Enabled
    {
        get => _enabled;
        set
        {
            _enabled = value;
            foreach (TLayer layer in _layers.Values) layer.Disabled = !value;
        }
    }

    /// <summary>Parses a config of this tuner from JSON. Default: the tuner given to the constructor parses it.</summary>
    /// <exception cref="TunerConfigException">The config is invalid, or is not a <typeparamref name="TConfig"/>.</exception>
    protected virtual TConfig ParseConfig(JsonObject json)
    {
        if (_tuner is null)
            throw new InvalidOperationException($"{GetType().Name}: pass the tuner to the LayerTunerModel constructor, or override ParseConfig.");
        TunerConfig config = _tuner.ParseConfig(json);
        return config as TConfig
            ?? throw new TunerConfigException($"The {_tuner.PeftType} tuner parsed a {config.GetType().Name}; {GetType().Name} takes {typeof(TConfig).Name}.");
    }

    /// <summary>Whether this tuner can adapt the module (e.g. a Linear for LoRA).</summary>
    protected abstract bool Supports(nn.Module module);

    /// <summary>Whether the module is a linear layer, for <c>all-linear</c>: a Linear, or a quantized one (bitsandbytes' layers are Linear subclasses in PEFT).</summary>
    protected virtual bool IsLinear(nn.Module module) => module is TorchSharp.Modules.Linear or QuantizedLinear;

    /// <summary>Creates the layer that wraps <paramref name="baseModule"/> at <paramref name="path"/> (with no adapter yet).</summary>
    protected abstract TLayer CreateLayer(string path, nn.Module<Tensor, Tensor> baseModule, TConfig config);

    /// <summary>Adds an adapter's parameters to a layer, initialised as the config says.</summary>
    protected abstract void AddAdapterToLayer(TLayer layer, string path, string adapter, TConfig config);

    /// <summary>
    /// True while <see cref="ImportAdapter"/> adds the adapter whose tensors it is about to copy in:
    /// a tuner may skip initialisation there, and must skip any that changes the base model (PiSSA,
    /// OLoRA), since the imported tensors belong to the base weights as they are.
    /// </summary>
    protected bool Importing { get; private set; }

    /// <summary>
    /// While <see cref="Importing"/> is true, the tensors of the adapter being imported, by the keys of its
    /// <see cref="AdapterState"/> (module path + saved layer key); empty otherwise. For a layer whose shape
    /// the config alone does not fix, so that <see cref="AddAdapterToLayer"/> can read it off the file
    /// (PEFT's BOFT: the number of butterfly factors is the first dimension of <c>boft_R</c>). Read only; the
    /// copy into the layer is the base class's.
    /// </summary>
    protected IReadOnlyDictionary<string, Tensor> ImportingTensors { get; private set; } = EmptyTensors;

    private static readonly IReadOnlyDictionary<string, Tensor> EmptyTensors = new Dictionary<string, Tensor>();

    /// <summary>
    /// Called after the adapters, the active set or their tensors change (add, import, delete,
    /// activate), once PEFT's trainable flags are set: an adapter's tensors in layers that declare
    /// their containers train when it is active and its config is not in inference mode. The place for
    /// a tuner's own additions (LoRA's <c>bias</c>). Default: nothing.
    /// </summary>
    protected virtual void OnAdaptersChanged() { }

    /// <summary>
    /// PEFT's <c>_prepare_adapter_config</c> (contract 1.1): the config an adapter is added with, e.g. a
    /// missing <c>target_modules</c> filled from PEFT's table for <see cref="TunerContext.ModelType"/>. The
    /// returned config is the one kept, exported and saved. Runs before targets are selected, for
    /// <see cref="AddAdapter"/> and <see cref="ImportAdapter"/> alike. Default: the config unchanged.
    /// </summary>
    /// <exception cref="TunerConfigException">The config cannot be completed for this model.</exception>
    protected virtual TConfig PrepareConfig(TConfig config) => config;

    /// <summary>
    /// The paths an adapter is added to (contract 1.1), among <paramref name="candidates"/>: every module
    /// of the model outside the tuner layers, with the module itself (for a module a tuner already wraps,
    /// the module it wraps). Default: PEFT's rules (<see cref="TargetSelection"/>) over the modules
    /// <see cref="Supports"/> accepts (for <c>all-linear</c>, those <see cref="IsLinear"/> accepts too).
    /// Override to choose by another rule (BitFit: every module with a bias when no target is named), or
    /// to look at the targets before any layer is made (PEFT's <c>_pre_injection_hook</c>: VeRA sizes its
    /// shared projections by them); nothing in the model has changed yet.
    /// </summary>
    /// <exception cref="TunerConfigException">Nothing matches, or a match cannot be adapted; the message names them.</exception>
    protected virtual IReadOnlyList<string> SelectTargets(string adapter, TConfig config, IReadOnlyList<(string Path, nn.Module Module)> candidates) =>
        TargetSelection.Select(config,
            candidates.Select(c => (c.Path, Supports(c.Module) && (config.TargetModules?.IsAllLinear != true || IsLinear(c.Module)))).ToList(),
            OutputHeadPath());

    /// <summary>
    /// An adapter's tensors that belong to this tuner model rather than to a layer (contract 1.1; VeRA's
    /// shared <c>vera_A</c> / <c>vera_B</c>), by key relative to the tuner model (see
    /// <see cref="AdapterState.ModelTensors"/>), live, not copies: <see cref="ExportAdapter"/> copies them
    /// into the state, and the default <see cref="ImportModelTensors"/> copies saved values into them.
    /// Default: none.
    /// </summary>
    protected virtual IReadOnlyDictionary<string, Tensor> ModelTensors(string adapter) => new Dictionary<string, Tensor>(StringComparer.Ordinal);

    /// <summary>
    /// Loads an imported adapter's <see cref="AdapterState.ModelTensors"/> (contract 1.1), after its layers
    /// were made and before its layer tensors are copied in. Default: every tensor of
    /// <see cref="ModelTensors"/> must be in <paramref name="tensors"/> with its shape, and is copied in
    /// (all or nothing); keys the model has no place for are ignored with a warning, as PEFT's loader
    /// ignores them. Override when a tensor may be absent (VeRA regenerates its projections from a seed).
    /// </summary>
    /// <exception cref="InvalidDataException">A tensor is missing or has another shape.</exception>
    protected virtual void ImportModelTensors(string adapter, IReadOnlyDictionary<string, Tensor> tensors)
    {
        IReadOnlyDictionary<string, Tensor> expected = ModelTensors(adapter);
        AdapterTensorCopy.CopyChecked(adapter, expected, tensors);
        var unexpected = tensors.Keys.Where(k => !expected.ContainsKey(k)).ToList();
        if (unexpected.Count > 0)
            Context.Logger.LogWarning("Adapter '{Adapter}': ignoring {Count} model-level tensor(s) the tuner has no place for: {Keys}", adapter, unexpected.Count, string.Join(", ", unexpected.Take(8)));
    }

    /// <summary>Not called since contract 1.1: the host keeps no opaque plugin state.</summary>
    [Obsolete(ObsoleteMessages.PluginState)]
    protected virtual byte[]? ExportPluginState(string adapter) => null;

    /// <summary>Not called since contract 1.1: the host keeps no opaque plugin state.</summary>
    [Obsolete(ObsoleteMessages.PluginState)]
    protected virtual void ImportPluginState(string adapter, byte[]? state) { }

    /// <inheritdoc />
    public void AddAdapter(string name, TunerConfig config)
    {
        if (config is not TConfig typed)
            throw new TunerConfigException($"Adapter '{name}': a {config.PeftType} config was given to a tuner that takes {typeof(TConfig).Name}.");
        AdapterNames.EnsureValid(name);
        if (_configs.ContainsKey(name)) throw new ArgumentException($"An adapter named '{name}' already exists.", nameof(name));
        typed = PrepareConfig(typed);

        // A module this tuner already wrapped is a candidate too (a second adapter joins its layer),
        // judged by the module it wraps; the wrapper's own children never are.
        var wrapped = Model.NamedModules().Where(m => m.Module is TunerLayer).Select(m => m.Path + ".").ToList();
        var candidates = Model.NamedModules().Where(m => !wrapped.Any(w => m.Path.StartsWith(w, StringComparison.Ordinal)))
            .Select(m => (m.Path, Module: m.Module is TunerLayer t ? (nn.Module)t.GetBaseLayer() : m.Module))
            .ToList();
        IReadOnlyList<string> targets = SelectTargets(name, typed, candidates);

        var created = new List<string>();
        var extended = new List<TLayer>();
        try
        {
            foreach (string path in targets)
            {
                if (!_layers.TryGetValue(path, out TLayer? layer))
                {
                    var baseModule = Model.Get(path) as nn.Module<Tensor, Tensor>
                        ?? throw new TunerConfigException($"target module '{path}' is not a Module<Tensor, Tensor>.");
                    // Another method's layer already on the module (methods combined, contract 1.2): the new layer is
                    // made for the original module and then wraps that layer, outermost, as PEFT's mixed model nests them.
                    layer = CreateLayer(path, TunerLayer.GetBaseLayer(baseModule), typed);
                    layer.PeftType = _tuner?.PeftType;
                    if (baseModule is TunerLayer inner) Wrap(name, path, layer, inner);
                    layer.Disabled = !_enabled;
                    Model.Replace(path, layer);
                    _layers[path] = layer;
                    created.Add(path);
                }
                AddAdapterToLayer(layer, path, name, typed);
                // A new layer, and what a new adapter put in it (a dropout module), run in the mode of the module
                // they wrap: adding an adapter, a load or a hot reload never switches an eval model to training.
                layer.train(layer.BaseLayer.training);
                extended.Add(layer);
                if (!layer.Adapters.Contains(name))
                    throw new InvalidOperationException($"{GetType().Name}: after AddAdapterToLayer, the layer at '{path}' does not hold adapter '{name}' (it must add an entry to a container it declared).");
                layer.ActiveAdapters = _active;
            }
        }
        catch
        {
            // Nothing half-applied: take the adapter out of every layer it reached, unwrap new layers.
            foreach (TLayer layer in extended) if (layer.Adapters.Contains(name)) layer.DeleteAdapter(name);
            foreach (string path in created) RemoveLayer(path);
            throw;
        }
        _configs[name] = typed;
        _adapterOrder.Add(name);
        if (_active.Count == 0) SetActiveAdapters([name]);
        else AdaptersChanged();
    }

    // Puts a new layer around another method's layer, or refuses (the new layer is freed, nothing is in the model yet):
    // every layer of the chain below is asked, and the new layer about each of them.
    private void Wrap(string adapter, string path, TLayer layer, TunerLayer inner)
    {
        for (TunerLayer? below = inner; below is not null; below = below.BaseLayer as TunerLayer)
        {
            string? reason = layer.CannotWrapReason(below) ?? below.CannotBeWrappedReason(layer);
            if (reason is null) continue;
            string outerName = layer.PeftType ?? layer.GetType().Name, innerName = below.PeftType ?? below.GetType().Name;
            layer.Dispose();
            throw new TunerConfigException(
                $"Adapter '{adapter}' ({outerName}): module '{path}' already holds a {innerName} layer (adapters {string.Join(", ", below.Adapters)}); {outerName} cannot be combined with {innerName} on one module: {reason}.");
        }
        layer.ReplaceBaseLayer(inner);
    }

    /// <inheritdoc />
    public void ImportAdapter(AdapterState state)
    {
        TConfig config = ParseConfig(state.Config);
        Importing = true;
        ImportingTensors = state.Tensors;
        try
        {
            AddAdapter(state.Name, config);
        }
        finally
        {
            Importing = false;
            ImportingTensors = EmptyTensors;
        }
        try
        {
            ImportModelTensors(state.Name, state.ModelTensors);
            var expected = ExpectedTensors(state.Name);
            var baseTensors = BaseLayerTensors();
            foreach ((string key, Tensor value) in SavedBaseModelTensors(state.Name)) baseTensors.TryAdd(key, value);
            // Base-model tensors saved with the adapter (PEFT saves whole embedding layers it targets, BOFT's
            // bias "all" every bias) are loaded into the base, as PEFT does.
            AdapterTensorCopy.CopyChecked(state.Name, expected.Concat(baseTensors.Where(b => state.Tensors.ContainsKey(b.Key) && !expected.ContainsKey(b.Key))), state.Tensors);
            // As PEFT (load_state_dict with strict=False), keys the model has no place for are ignored; they are reported.
            var unexpected = state.Tensors.Keys.Where(k => !expected.ContainsKey(k) && !baseTensors.ContainsKey(k)).ToList();
            if (unexpected.Count > 0)
                Context.Logger.LogWarning("Adapter '{Adapter}': ignoring {Count} tensor(s) the model has no place for: {Keys}", state.Name, unexpected.Count, string.Join(", ", unexpected.Take(8)));
            AdaptersChanged();
        }
        catch
        {
            DeleteAdapter(state.Name);
            throw;
        }
    }

    /// <inheritdoc />
    public AdapterState ExportAdapter(string name)
    {
        TConfig config = GetConfig(name);
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        var modelTensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        using (no_grad())
        {
            foreach ((string key, Tensor value) in ModelTensors(name))
                modelTensors[key] = CpuCopy(value);
            foreach ((string key, Tensor value) in ExpectedTensors(name))
                tensors[key] = CpuCopy(value);
            foreach ((string path, TLayer layer) in _layers)
            {
                if (!layer.Adapters.Contains(name) || !ExportsBaseLayer(path, config)) continue;
                foreach (var (param, value) in layer.GetBaseLayer().named_parameters())
                    tensors[$"{path}.{TunerLayer.BaseLayerName}.{param}"] = CpuCopy(value);
            }
            foreach ((string key, Tensor value) in SavedBaseModelTensors(name))
                tensors.TryAdd(key, CpuCopy(value));
        }
        JsonObject json = config.ToJson();
        try
        {
            OnExporting(name, json, tensors);
        }
        catch
        {
            foreach (Tensor t in tensors.Values.Concat(modelTensors.Values)) t.Dispose();
            throw;
        }
        return new AdapterState(name, json, tensors) { ModelTensors = modelTensors };
    }

    /// <summary>
    /// Called by <see cref="ExportAdapter"/> with the adapter's config as JSON and its exported tensors
    /// (copies the state will own, by PEFT key), before they are returned (contract 1.1): a tuner whose saved
    /// form differs from its live layers rewrites them here, as PEFT's state dict does (AdaLoRA cuts its
    /// triplets to the rank pattern allocated while training, and records it in the config). A replaced
    /// tensor must be disposed. The import of what this returns must rebuild the adapter. Default: nothing.
    /// </summary>
    /// <param name="adapter">The adapter exported.</param>
    /// <param name="config">Its config as it will be saved (may be changed).</param>
    /// <param name="tensors">Its tensors (may be changed).</param>
    protected virtual void OnExporting(string adapter, JsonObject config, IDictionary<string, Tensor> tensors) { }

    // A copy on the CPU; the detached view and the moved tensor in between are freed now, not by the finalizer.
    private static Tensor CpuCopy(Tensor value)
    {
        using Tensor detached = value.detach();
        using Tensor onCpu = detached.to(CPU);
        return onCpu.clone();
    }

    /// <inheritdoc />
    public void DeleteAdapter(string name)
    {
        if (!_configs.Remove(name)) throw new KeyNotFoundException($"No adapter named '{name}'.");
        _adapterOrder.Remove(name);
        foreach ((string path, TLayer layer) in _layers.ToList())
        {
            if (layer.Adapters.Contains(name)) layer.DeleteAdapter(name);
            if (layer.Adapters.Count == 0) RemoveLayer(path);
        }
        if (_active.Contains(name)) SetActiveAdapters(_active.Where(a => a != name).ToList());
        else AdaptersChanged();
    }

    /// <inheritdoc />
    public void SetActiveAdapters(IReadOnlyList<string> names)
    {
        foreach (string n in names)
            if (!_configs.ContainsKey(n)) throw new KeyNotFoundException($"No adapter named '{n}' (adapters: {string.Join(", ", _adapterOrder)}).");
        _active = [.. names];
        foreach (TLayer layer in _layers.Values) layer.ActiveAdapters = _active;
        AdaptersChanged();
    }

    /// <summary>Whether the adapters merge into the base weights. Default: whether every injected layer can (true while there is none).</summary>
    public virtual bool CanMerge => _layers.Values.All(l => l.CanMerge);

    /// <summary>Why the adapters cannot merge, when <see cref="CanMerge"/> is false (contract 1.1). Default: null, no reason given.</summary>
    public virtual string? CannotMergeReason => null;

    /// <inheritdoc />
    public IReadOnlyList<string> MergedAdapters => _adapterOrder.Where(a => _layers.Values.Any(l => l.MergedAdapters.Contains(a))).ToList();

    /// <inheritdoc />
    public void Merge(IReadOnlyList<string> adapters, bool safeMerge)
    {
        foreach (string a in adapters)
            if (!_configs.ContainsKey(a)) throw new KeyNotFoundException($"No adapter named '{a}' (adapters: {string.Join(", ", _adapterOrder)}).");
        var done = new List<(TLayer Layer, string Adapter)>();
        try
        {
            foreach (string a in adapters)
                foreach (TLayer layer in _layers.Values)
                {
                    if (!layer.Adapters.Contains(a)) continue;
                    layer.Merge(a, safeMerge);
                    done.Add((layer, a));
                }
        }
        catch
        {
            // All or nothing: a safe merge that finds NaN/Inf in one layer undoes this call's merges
            // (newest first); adapters merged by earlier calls stay merged.
            for (int i = done.Count - 1; i >= 0; i--) done[i].Layer.UnmergeLatest(done[i].Adapter);
            throw;
        }
    }

    /// <inheritdoc />
    public void Unmerge()
    {
        foreach (TLayer layer in _layers.Values) layer.Unmerge();
    }

    /// <inheritdoc />
    public void Detach()
    {
        foreach (string path in _layers.Keys.ToList()) RemoveLayer(path);
        _configs.Clear();
        _adapterOrder.Clear();
        _active = [];
    }

    /// <summary>Detaches (restoring the base model) and frees the tuner's own modules.</summary>
    public void Dispose()
    {
        Detach();
        GC.SuppressFinalize(this);
    }

    /// <summary>The output head's path, left out by <c>all-linear</c> (default: "lm_head" when present).</summary>
    protected virtual string? OutputHeadPath() => Model.Contains("lm_head") ? "lm_head" : null;

    /// <summary>The adapter's tensors in the model by PEFT key (module path + saved layer key), live, not copies.</summary>
    protected Dictionary<string, Tensor> ExpectedTensors(string adapter)
    {
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach ((string path, TLayer layer) in _layers)
            foreach ((string key, Tensor value) in layer.AdapterTensors(adapter))
                if (IsExported(key)) result[path + "." + SavedKey(key)] = value;
        return result;
    }

    /// <summary>
    /// Whether a layer tensor (key relative to the layer, the adapter name removed) is part of an
    /// adapter's exported state: saved, hotswapped, handed across a plugin reload, and expected on
    /// import. A tensor left out must follow from the config, since <see cref="AddAdapterToLayer"/>
    /// alone sets it on import. Default: every tensor. PEFT leaves some out (AdaLoRA's <c>ranknum</c>).
    /// </summary>
    protected virtual bool IsExported(string layerKey) => true;

    /// <summary>
    /// The key a layer tensor is saved under, relative to the layer (the adapter name already removed).
    /// Default: unchanged. PEFT renames some (DoRA's <c>lora_magnitude_vector.weight</c> is saved as
    /// <c>lora_magnitude_vector</c>).
    /// </summary>
    protected virtual string SavedKey(string layerKey) => layerKey;

    /// <summary>Whether an adapter's export also carries the base weights of the layer at <paramref name="path"/> (PEFT does for targeted embedding layers).</summary>
    protected virtual bool ExportsBaseLayer(string path, TConfig config) => false;

    /// <summary>
    /// Tensors of the base model (not of any adapter) that an adapter's export carries, live, by their path in
    /// the model as it is now (a wrapped layer's own as <c>&lt;path&gt;.base_layer.&lt;name&gt;</c>): saved with the
    /// adapter, and loaded back into their place when an imported adapter holds them. Default: none. PEFT saves
    /// some for trained base tensors: BOFT's <c>bias: "all"</c> saves every bias of the model.
    /// </summary>
    protected virtual IReadOnlyDictionary<string, Tensor> SavedBaseModelTensors(string adapter) => EmptyTensors;

    /// <summary>The wrapped base layers' tensors by key (<c>&lt;path&gt;.base_layer.&lt;name&gt;</c>), live.</summary>
    protected Dictionary<string, Tensor> BaseLayerTensors()
    {
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach ((string path, TLayer layer) in _layers)
            foreach (var (name, p) in layer.GetBaseLayer().named_parameters())
                result[$"{path}.{TunerLayer.BaseLayerName}.{name}"] = p;
        return result;
    }

    // PEFT's trainable rule, in one place for every tuner (_mark_only_adapters_as_trainable and the
    // layers' set_adapter): an adapter trains when it is active and not in inference mode. Layers of
    // contract 1.0 declare no containers and keep their own flags.
    private void AdaptersChanged()
    {
        foreach (TLayer layer in _layers.Values)
        {
            if (!layer.DeclaresContainers) continue;
            foreach (string adapter in layer.Adapters)
                layer.SetAdapterTrainable(adapter, _active.Contains(adapter) && _configs.TryGetValue(adapter, out TConfig? c) && !c.InferenceMode);
        }
        OnAdaptersChanged();
    }

    private void RemoveLayer(string path)
    {
        if (!_layers.Remove(path, out TLayer? layer)) return;
        Model.Restore(path);
        layer.Dispose();
    }
}
