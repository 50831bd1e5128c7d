using System.Diagnostics;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using PeftHost.Abstractions.Layers;
using PeftHost.Abstractions.State;
using PeftHost.Abstractions.Surgery;
using PeftHost.Abstractions.Tuning;
using PeftHost.Engine.Plugins;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Engine.Peft;

/// <summary>
/// A base model with adapters applied through the plugins that serve their peft_type. The base
/// model stays in memory across plugin reloads: a reload hands the adapters' state from the old
/// plugin version to the new one (<see cref="IPluginUser.BeginTunerSwap"/>). Forward passes run under a read
/// lock so that a swap waits for those in flight and new ones wait for the swap. It knows no
/// method: what is specific to one (conversion, hotswap, combination) it asks the adapter's tuner
/// model for, through the contract's capability interfaces.
/// </summary>
public sealed partial class PeftModel : IPluginUser, IDisposable
{
    private readonly ReaderWriterLockSlim _lock = new(LockRecursionPolicy.SupportsRecursion);
    private readonly PluginCatalog _catalog;
    private readonly ILogger _logger;
    private readonly List<TunerSlot> _slots = [];
    private readonly List<string> _adapterOrder = [];
    private readonly Dictionary<string, string> _adapterTypes = new(StringComparer.Ordinal);
    private readonly ModulesToSave _modulesToSave;
    private List<string> _active = [];
    private bool _enabled = true;
    private bool _disposed;
    private int? _hotswapRank; // the last PrepareForHotswap, applied again to a plugin's new version after a reload

    /// <summary>Wraps <paramref name="baseModel"/>; adapters come from <paramref name="catalog"/>'s plugins.</summary>
    public PeftModel(nn.Module baseModel, PluginCatalog catalog)
    {
        BaseModel = baseModel;
        _catalog = catalog;
        // As PEFT's get_peft_model: the base is frozen; only adapter parameters train.
        foreach (var p in baseModel.parameters()) p.requires_grad = false;
        _logger = catalog.LoggerFactory.CreateLogger<PeftModel>();
        _modulesToSave = new ModulesToSave(baseModel);
        catalog.Register(this);
    }

    /// <summary>The base model (its modules are wrapped while adapters are applied).</summary>
    public nn.Module BaseModel { get; }

    /// <summary>
    /// The base model's tokenizer (text to ids, special tokens included, as transformers' <c>tokenizer(text)</c>),
    /// handed to the methods' plugins (<see cref="TunerContext.Tokenize"/>): prompt tuning's <c>TEXT</c>
    /// initialisation needs it. Null: none (such a config is refused).
    /// </summary>
    public Func<string, IReadOnlyList<int>>? Tokenize { get; init; }

    /// <summary>The adapters, in the order they were added.</summary>
    public IReadOnlyList<string> Adapters => Read(() => (IReadOnlyList<string>)[.. _adapterOrder]);

    /// <summary>The adapters the forward pass uses.</summary>
    public IReadOnlyList<string> ActiveAdapters => Read(() => (IReadOnlyList<string>)[.. _active]);

    /// <summary>The plugin version serving an adapter ("id version").</summary>
    public string PluginOf(string adapter) => Read(() => SlotOf(adapter).Plugin.Label);

    /// <summary>Adds an adapter from an <c>adapter_config.json</c> object, freshly initialised; it becomes active when none is.</summary>
    /// <exception cref="KeyNotFoundException">No plugin serves the config's peft_type.</exception>
    /// <exception cref="PluginFaultException">The plugin threw; the model is left as it was.</exception>
    /// <exception cref="ArgumentException">The name is invalid or taken.</exception>
    /// <exception cref="Abstractions.Config.TunerConfigException">The config has no peft_type string, or the plugin refuses it.</exception>
    public void AddAdapter(string name, JsonObject config) => Write(() =>
    {
        ArgumentNullException.ThrowIfNull(config);
        EnsureNewName(name);
        config = ModulesToSave.WithTaskHeads(config);
        string peftType = PeftTypeOf(config, name);
        TunerSlot slot = SlotFor(peftType, out bool created);
        try
        {
            Guard(slot, "apply", () => slot.Model.AddAdapter(name, slot.Plugin.Tuners[peftType].ParseConfig(config)));
        }
        catch
        {
            if (created) DropSlot(slot);
            throw;
        }
        AddModulesToSave(name, config, slot, created, tensors: null);
        Registered(name, peftType);
    });

    /// <summary>Adds an adapter from exported state (config, tensors by PEFT keys).</summary>
    /// <exception cref="ArgumentException">The name is invalid or taken.</exception>
    /// <exception cref="InvalidDataException">A tensor is missing, unexpected, or of the wrong shape (nothing is applied).</exception>
    public void ImportAdapter(AdapterState state) => Write(() =>
    {
        ArgumentNullException.ThrowIfNull(state);
        EnsureNewName(state.Name);
        PeftTypeOf(state.Config, state.Name);
        (Dictionary<string, Tensor> tunerTensors, Dictionary<string, Tensor> copies) = _modulesToSave.Split(state.Config, state.Tensors);
        var tunerState = new AdapterState(state.Name, state.Config, tunerTensors) { ModelTensors = state.ModelTensors };
        TunerSlot slot = SlotFor(state.PeftType, out bool created);
        try
        {
            Guard(slot, "apply", () => slot.Model.ImportAdapter(tunerState));
        }
        catch
        {
            if (created) DropSlot(slot);
            throw;
        }
        AddModulesToSave(state.Name, state.Config, slot, created, copies);
        Registered(state.Name, state.PeftType);
    });

    /// <summary>An adapter as plain data (the caller owns and disposes it): the tuner's tensors and its modules_to_save copies.</summary>
    public AdapterState ExportAdapter(string name) => Read(() =>
    {
        TunerSlot slot = SlotOf(name);
        AdapterState state = Exported(slot, name);
        if (!_modulesToSave.Holds(name)) return state;
        var tensors = new Dictionary<string, Tensor>(state.Tensors, StringComparer.Ordinal);
        _modulesToSave.Export(name, tensors);
        return new AdapterState(state.Name, state.Config, tensors) { ModelTensors = state.ModelTensors };
    });

    /// <summary>
    /// Saves adapters as PEFT's <c>save_pretrained</c> does: "default" at the root of
    /// <paramref name="directory"/>, any other adapter in <c>&lt;directory&gt;/&lt;name&gt;/</c>, each with
    /// <c>adapter_config.json</c> and <c>adapter_model.safetensors</c> (PEFT key names); with
    /// <paramref name="options"/>, the base model's name in each config and PEFT's model card. Every adapter
    /// is exported before anything is written.
    /// </summary>
    /// <param name="directory">The output folder.</param>
    /// <param name="selectedAdapters">PEFT's <c>selected_adapters</c> (default: all).</param>
    /// <param name="options">What else to record (default: nothing else).</param>
    public void SavePretrained(string directory, IReadOnlyList<string>? selectedAdapters = null, AdapterSaveOptions? options = null) =>
        Save(directory, selectedAdapters ?? Adapters, ExportAdapter, options);

    // Exports every adapter (all or nothing), then writes each folder, then the model card.
    private void Save(string directory, IReadOnlyList<string> names, Func<string, AdapterState> export, AdapterSaveOptions? options)
    {
        var states = new List<(AdapterState State, bool Prompt)>();
        try
        {
            foreach (string name in names) states.Add((export(name), IsPromptLearning(name)));
            foreach ((AdapterState state, bool prompt) in states)
                AdapterFolder.Write(AdapterFolder.AdapterDirectory(directory, state.Name), state, prefixKeys: !prompt, options?.BaseModelNameOrPath);
            if (options is { WriteModelCard: true })
            {
                string types = string.Join(", ", states.Select(s => s.State.PeftType).Distinct());
                Formats.AtomicFile.WriteAllText(Path.Combine(directory, ModelCard.FileName), ModelCard.Text(options.BaseModelNameOrPath, types, options.TrainingDetails));
            }
        }
        finally
        {
            foreach ((AdapterState state, _) in states) state.Dispose();
        }
    }

    /// <summary>
    /// Loads a PEFT adapter folder as adapter <paramref name="name"/> (PEFT's <c>load_adapter</c>).
    /// As PEFT, the config's <c>inference_mode</c> becomes <c>!isTrainable</c>, so the adapter's parameters
    /// train only when <paramref name="isTrainable"/> (and the adapter is active); without it the model is
    /// put in eval mode. Nothing is applied on error.
    /// With <paramref name="hotswap"/>, the weights replace those of the existing adapter
    /// <paramref name="name"/> in place (no new layers, no new buffers; see <see cref="PrepareForHotswap"/>).
    /// </summary>
    public void LoadAdapter(string directory, string name, bool isTrainable = false, bool hotswap = false)
    {
        AdapterNames.EnsureValid(name);
        using AdapterState state = AdapterFolder.Read(directory, name);
        if (hotswap)
        {
            Hotswap(state);
            return;
        }
        state.Config["inference_mode"] = !isTrainable;
        ImportAdapter(state);
        Write(() =>
        {
            _modulesToSave.SetTrainable(name, isTrainable);
            // As PEFT's load_adapter: an adapter loaded for inference puts the model in eval mode (no dropout in new layers).
            if (!isTrainable) BaseModel.eval();
        });
    }

    /// <summary>
    /// A PeftModel over <paramref name="baseModel"/> with the adapter in <paramref name="directory"/>
    /// (PEFT's <c>PeftModel.from_pretrained</c>).
    /// </summary>
    public static PeftModel FromPretrained(nn.Module baseModel, string directory, PluginCatalog catalog, string adapterName = "default", bool isTrainable = false)
    {
        var model = new PeftModel(baseModel, catalog);
        try
        {
            model.LoadAdapter(directory, adapterName, isTrainable);
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Pads every adapter that supports hotswap to <paramref name="targetRank"/>, so that adapters of
    /// any rank up to it swap into the same buffers (PEFT's <c>prepare_model_for_compiled_hotswap</c>).
    /// </summary>
    public void PrepareForHotswap(int targetRank) => Write(() =>
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(targetRank);
        foreach (TunerSlot slot in _slots)
            if (slot.Model is IHotswapModel h) Guard(slot, "prepare hotswap", () => h.PrepareForHotswap(targetRank));
        _hotswapRank = targetRank;
    });

    /// <summary>Replaces the weights (and alpha/scaling) of the existing adapter <c>state.Name</c> in place.</summary>
    /// <exception cref="NotSupportedException">The adapter's method cannot hotswap.</exception>
    /// <exception cref="InvalidDataException">The new adapter targets modules the loaded one does not, or does not fit its buffers.</exception>
    /// <exception cref="InvalidOperationException">The adapter is merged.</exception>
    public void Hotswap(AdapterState state) => Write(() =>
    {
        ArgumentNullException.ThrowIfNull(state);
        TunerSlot slot = SlotOf(state.Name);
        string peftType = PeftTypeOf(state.Config, state.Name);
        if (peftType != slot.PeftType)
            throw new InvalidDataException($"Hotswap into '{state.Name}': the new adapter is {peftType}, the loaded one {slot.PeftType}.");
        if (slot.Model is not IHotswapModel h) throw new NotSupportedException($"{slot.PeftType} adapters cannot be hotswapped.");
        // Its weights are in the base: swapping them now would unmerge the new ones and leave the old ones in.
        if (MergedNow().Contains(state.Name)) throw new InvalidOperationException($"Hotswap into '{state.Name}': the adapter is merged into the base weights; unmerge it first.");
        IReadOnlySet<string> copyKeys = _modulesToSave.KeysOf(state.Name);
        var tunerState = new AdapterState(state.Name, state.Config, state.Tensors.Where(t => !copyKeys.Contains(t.Key)).ToDictionary(t => t.Key, t => t.Value))
        {
            ModelTensors = state.ModelTensors,
        };
        Guard(slot, "hotswap", () => h.Hotswap(state.Name, tunerState));
        if (copyKeys.Count > 0) _modulesToSave.Fill(state.Name, state.Tensors);
    });

    /// <summary>
    /// Adds adapter <paramref name="newName"/> combining <paramref name="adapters"/> with
    /// <paramref name="weights"/> (PEFT's <c>add_weighted_adapter</c>: "linear", "cat", "svd").
    /// </summary>
    public void AddWeightedAdapter(IReadOnlyList<string> adapters, IReadOnlyList<double> weights, string newName, string combinationType = "svd", int? svdRank = null) => Write(() =>
    {
        ArgumentNullException.ThrowIfNull(adapters);
        ArgumentNullException.ThrowIfNull(weights);
        EnsureNewName(newName);
        if (adapters.Count == 0) throw new ArgumentException("add_weighted_adapter needs at least one adapter.", nameof(adapters));
        if (weights.Count != adapters.Count)
            throw new ArgumentException($"add_weighted_adapter: {weights.Count} weights for {adapters.Count} adapters ({string.Join(", ", adapters)}); give one weight per adapter.", nameof(weights));
        if (weights.FirstOrDefault(w => !double.IsFinite(w), 0) is var bad && !double.IsFinite(bad))
            throw new ArgumentException($"add_weighted_adapter: weight {bad} is not a finite number.", nameof(weights));
        if (svdRank is <= 0) throw new ArgumentOutOfRangeException(nameof(svdRank), svdRank, "svd_rank must be positive.");
        var slots = adapters.Select(SlotOf).Distinct().ToList();
        if (slots.Count != 1) throw new ArgumentException("add_weighted_adapter combines adapters of one method only.");
        TunerSlot slot = slots[0];
        if (slot.Model is not IWeightedAdapterModel w) throw new NotSupportedException($"{slot.PeftType} adapters cannot be combined.");
        Guard(slot, "add weighted adapter", () => w.AddWeightedAdapter(adapters, weights, newName, combinationType, svdRank));
        Registered(newName, slot.PeftType);
    });

    /// <summary>Removes an adapter.</summary>
    public void DeleteAdapter(string name) => Write(() =>
    {
        TunerSlot slot = SlotOf(name);
        Guard(slot, "delete", () => slot.Model.DeleteAdapter(name));
        _adapterOrder.Remove(name);
        _adapterTypes.Remove(name);
        _active.Remove(name);
        if (AdaptersOfSlot(slot).Count == 0) DropSlot(slot);
        _modulesToSave.Delete(name);
        ApplyActive();
    });

    /// <summary>Makes these adapters (one or several) the active ones.</summary>
    public void SetActiveAdapters(params string[] names) => Write(() =>
    {
        ArgumentNullException.ThrowIfNull(names);
        if (names.GroupBy(n => n).FirstOrDefault(g => g.Count() > 1) is { } twice)
            throw new ArgumentException($"SetActiveAdapters names '{twice.Key}' twice.", nameof(names));
        foreach (string n in names)
            if (!_adapterTypes.ContainsKey(n)) throw new KeyNotFoundException($"No adapter named '{n}' (adapters: {string.Join(", ", _adapterOrder)}).");
        List<string> previous = _active;
        _active = [.. names];
        try
        {
            ApplyActive();
        }
        catch
        {
            // All or nothing: the tuners that took the new set go back to the old one.
            _active = previous;
            TryApplyActive();
            throw;
        }
    });

    /// <summary>
    /// Whether adapters take part in the forward pass (false: exactly the base model; PEFT's
    /// <c>enable_adapter_layers</c> / <c>disable_adapter_layers</c>). Disabling unmerges merged adapters
    /// first, since they live in the base weights (as PEFT does). <see cref="DisableAdapter"/> is the scoped form.
    /// </summary>
    public bool AdaptersEnabled
    {
        get => Read(() => _enabled);
        set => Write(() =>
        {
            if (!value) UnmergeAll();
            bool previous = _enabled;
            var done = new List<TunerSlot>();
            try
            {
                foreach (TunerSlot s in _slots)
                {
                    Guard(s, "enable", () => s.Model.Enabled = value);
                    done.Add(s);
                }
            }
            catch
            {
                // All or nothing: the tuners already switched are switched back (a second fault there is logged).
                foreach (TunerSlot s in done) TryPlugin(s, "enable", () => s.Model.Enabled = previous);
                throw;
            }
            _enabled = value;
            _modulesToSave.Enabled = value;
        });
    }

    /// <summary>Adapters off until the returned scope is disposed (PEFT's <c>with model.disable_adapter():</c>).</summary>
    public IDisposable DisableAdapter()
    {
        bool wasEnabled = AdaptersEnabled;
        AdaptersEnabled = false;
        return new Restorer(() => AdaptersEnabled = wasEnabled);
    }

    /// <summary>The adapters merged into the base weights.</summary>
    public IReadOnlyList<string> MergedAdapters => Read(MergedNow);

    /// <summary>
    /// Merges adapters (default: the active ones) into the base weights. With
    /// <paramref name="safeMerge"/>, NaN/Inf is checked before anything changes.
    /// </summary>
    /// <exception cref="NotSupportedException">An adapter's method cannot merge (prompt learning).</exception>
    public void Merge(IReadOnlyList<string>? adapters = null, bool safeMerge = false) => Write(() =>
    {
        foreach (string n in adapters ?? _active) SlotOf(n);
        // As PEFT's merge_adapter: an adapter merged already is skipped (merging it twice would add it twice).
        var merged = MergedNow().ToHashSet(StringComparer.Ordinal);
        List<string> names = [.. (adapters ?? _active).Distinct().Where(n => !merged.Contains(n))];
        if (names.Count == 0) return;
        var done = new List<TunerSlot>();
        try
        {
            foreach (TunerSlot slot in InnerFirst(strict: true))
            {
                var mine = names.Where(n => _adapterTypes[n] == slot.PeftType).ToList();
                if (mine.Count == 0) continue;
                if (!Guard(slot, "merge", () => slot.Model.CanMerge))
                {
                    string? reason = Guard(slot, "merge", () => slot.Model.CannotMergeReason);
                    throw new NotSupportedException($"{slot.PeftType} adapters ({string.Join(", ", mine)}) cannot be merged into the base weights{(reason is null ? "." : ": " + reason)}");
                }
                Guard(slot, "merge", () => slot.Model.Merge(mine, safeMerge));
                done.Add(slot);
            }
        }
        catch
        {
            for (int i = done.Count - 1; i >= 0; i--) Guard(done[i], "unmerge", done[i].Model.Unmerge);
            throw;
        }
    });

    /// <summary>Takes every merged adapter out of the base weights.</summary>
    public void Unmerge() => Write(UnmergeAll);

    // Outer layers first (the reverse of a merge), so that a rotation (OFT) merged after an inner delta comes out before it.
    private void UnmergeAll()
    {
        List<TunerSlot> order = InnerFirst(strict: false);
        for (int i = order.Count - 1; i >= 0; i--) Guard(order[i], "unmerge", order[i].Model.Unmerge);
    }

    // Methods combined on one module merge inner first, as the forward applies them (PEFT's merge_recursively): the
    // tuners in an order where, on every module, the tuner of a layer comes before the tuner of the layer around it;
    // otherwise in the order they were attached. Nested in both orders on different modules, there is no such order:
    // a merge (strict) is refused; an unmerge takes the attach order for the rest (each layer takes out what it put in).
    private List<TunerSlot> InnerFirst(bool strict)
    {
        var after = new Dictionary<TunerSlot, HashSet<TunerSlot>>();
        foreach (nn.Module module in BaseModel.modules())
        {
            if (module is not TunerLayer { BaseLayer: TunerLayer inner } outer) continue;
            TunerSlot? o = SlotOfLayer(outer), i = SlotOfLayer(inner);
            if (o is null || i is null || ReferenceEquals(o, i)) continue;
            if (!after.TryGetValue(o, out HashSet<TunerSlot>? set)) after[o] = set = [];
            set.Add(i);
        }
        var order = new List<TunerSlot>();
        var left = _slots.ToList();
        while (left.Count > 0)
        {
            TunerSlot? next = left.FirstOrDefault(s => !after.TryGetValue(s, out HashSet<TunerSlot>? inners) || inners.All(order.Contains));
            if (next is null && !strict) next = left[0];
            if (next is null)
                throw new NotSupportedException(
                    $"The adapters cannot be merged: methods {string.Join(", ", left.Select(s => s.PeftType))} are nested in different orders on different modules, and each method merges all its modules at once, so no merge order matches the forward on every module. Use them unmerged, or load the adapters in one order.");
            order.Add(next);
            left.Remove(next);
        }
        return order;
    }

    private TunerSlot? SlotOfLayer(TunerLayer layer) => layer.PeftType is { } type ? _slots.FirstOrDefault(s => s.PeftType == type) : null;

    /// <summary>
    /// Merges the active adapters and removes every tuner layer (PEFT's <c>merge_and_unload</c>):
    /// returns the base model, now a plain model holding the merged weights. This PeftModel is empty afterwards.
    /// </summary>
    public nn.Module MergeAndUnload(bool safeMerge = false)
    {
        Merge(safeMerge: safeMerge);
        return Unload(unmerge: false);
    }

    /// <summary>Removes every tuner layer and returns the base model (PEFT's <c>unload</c>: merged adapters are taken out first).</summary>
    public nn.Module Unload() => Unload(unmerge: true);

    private nn.Module Unload(bool unmerge)
    {
        Write(() =>
        {
            if (unmerge) UnmergeAll();
            foreach (TunerSlot slot in _slots.ToList()) DropSlot(slot);
            // merge_and_unload keeps the active adapter's copy of each saved module (PEFT puts the copy in place).
            _modulesToSave.Unload(keepActiveCopies: !unmerge);
            _adapterOrder.Clear();
            _adapterTypes.Clear();
            _active.Clear();
        });
        return BaseModel;
    }

    /// <summary>
    /// The parameters as PEFT names them on a PeftModel: the base model's as <c>base_model.model.&lt;path&gt;</c>
    /// (<c>...q_proj.base_layer.weight</c>, <c>...q_proj.lora_A.default.weight</c>), then those the tuners own
    /// outside it under their own names (prompt learning's <c>prompt_encoder.&lt;adapter&gt;.embedding.weight</c>).
    /// </summary>
    public IReadOnlyList<(string Name, TorchSharp.Modules.Parameter Parameter)> NamedParameters() => Read(() =>
    {
        var list = BaseModel.named_parameters().Select(p => (AdapterFolder.KeyPrefix + p.name, p.parameter)).ToList();
        foreach (TunerSlot slot in _slots) list.AddRange(Guard(slot, "list parameters", () => slot.Model.NamedParameters().ToList()));
        return (IReadOnlyList<(string, TorchSharp.Modules.Parameter)>)list;
    });

    /// <summary>Trainable and total parameter counts (elements) of <see cref="NamedParameters"/>, as PEFT's <c>get_nb_trainable_parameters</c>.</summary>
    public (long Trainable, long Total) TrainableParameterCounts() => Read(() =>
    {
        long trainable = 0, total = 0;
        foreach (var (_, p) in NamedParameters())
        {
            total += p.numel();
            if (p.requires_grad) trainable += p.numel();
        }
        return (trainable, total);
    });

    /// <summary>PEFT's <c>print_trainable_parameters</c> line, e.g. "trainable params: 1,024 || all params: 10,240 || trainable%: 10.0000".</summary>
    public string PrintTrainableParameters()
    {
        string line = TrainableParametersLine();
        Console.WriteLine(line);
        return line;
    }

    /// <summary>The line <see cref="PrintTrainableParameters"/> prints, without printing it.</summary>
    public string TrainableParametersLine()
    {
        (long trainable, long total) = TrainableParameterCounts();
        return string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"trainable params: {trainable:N0} || all params: {total:N0} || trainable%: {(total == 0 ? 0 : 100.0 * trainable / total):F4}");
    }

    /// <summary>Removes every adapter (the base model is restored exactly) and leaves the catalog.</summary>
    /// <remarks>
    /// Safe while a plugin reload or another thread's call waits for the model: those see it disposed. The lock is left
    /// to the garbage collector (it holds no native resource), since a ReaderWriterLockSlim disposed while waited on throws.
    /// </remarks>
    public void Dispose()
    {
        if (_disposed) return;
        _lock.EnterWriteLock();
        try
        {
            if (_disposed) return;
            foreach (TunerSlot slot in _slots.ToList()) DropSlot(slot);
            _modulesToSave.Dispose();
            _adapterOrder.Clear();
            _adapterTypes.Clear();
            _active.Clear();
            _disposed = true; // under the lock: whoever takes it next sees it
        }
        finally
        {
            _lock.ExitWriteLock();
        }
        _catalog.Unregister(this);
    }

    private TunerSlot SlotFor(string peftType, out bool created)
    {
        TunerSlot? existing = _slots.FirstOrDefault(s => s.PeftType == peftType);
        created = existing is null;
        return existing ?? Attach(peftType, _catalog.GetPlugin(peftType));
    }

    private TunerSlot Attach(string peftType, PluginAssembly plugin)
    {
        var surgeon = new ModelSurgeon(BaseModel);
        ITuner tuner = plugin.Tuners[peftType];
        var context = new TunerContext(_catalog.LoggerFactory.CreateLogger($"PeftHost.Plugins.{plugin.Manifest.Id}"))
        {
            ModelType = ModelType(BaseModel),
            Tokenize = Tokenize,
            EmbedTokens = BaseModel is Models.ICausalLM causal ? causal.EmbedInputs : null,
        };
        ITunerModel model;
        try { model = tuner.Attach(surgeon, context); }
        catch (Exception e) { throw new PluginFaultException(plugin.Manifest.Id, plugin.Manifest.Version, "attach", e); }
        var slot = new TunerSlot(peftType, plugin, model, surgeon);
        _slots.Add(slot);
        return slot;
    }

    // transformers' model_type of our architectures (what PEFT's target-module tables are keyed by); null for a user's own module.
    private static string? ModelType(nn.Module model) => model switch
    {
        Models.ICausalLM causal => causal.Config.ModelType,
        Models.ISequenceClassifier classifier => classifier.Config.ModelType,
        _ => null,
    };

    // Detaches a tuner model; whatever the plugin does, the host's surgeon restores every module
    // it replaced, so the base model comes back exactly.
    private void DropSlot(TunerSlot slot)
    {
        _slots.Remove(slot);
        try { slot.Model.Dispose(); }
        catch (Exception e) { _logger.LogError(e, "Plugin {Plugin} failed while detaching; the host restores the base modules itself", slot.Plugin.Label); }
        if (slot.Surgeon.ReplacedPaths.Count > 0) slot.Surgeon.RestoreAll();
    }

    // The adapter is in its tuner: the host lists it and activates it when none is active. If the tuners refuse the
    // active set, the adapter is taken out again (all or nothing).
    private void Registered(string name, string peftType)
    {
        _adapterOrder.Add(name);
        _adapterTypes[name] = peftType;
        bool activated = _active.Count == 0;
        if (activated) _active.Add(name);
        try
        {
            ApplyActive();
        }
        catch
        {
            _adapterOrder.Remove(name);
            _adapterTypes.Remove(name);
            if (activated) _active.Remove(name);
            _modulesToSave.Delete(name);
            TunerSlot slot = _slots.First(s => s.PeftType == peftType);
            TryPlugin(slot, "delete", () => slot.Model.DeleteAdapter(name));
            if (AdaptersOfSlot(slot).Count == 0) DropSlot(slot);
            TryApplyActive();
            throw;
        }
    }

    // Cleanup after a fault: a second fault is logged, the first one is what the caller gets.
    private void TryApplyActive()
    {
        try { ApplyActive(); }
        catch (Exception e) { _logger.LogError(e, "Restoring the active adapters after a fault failed"); }
    }

    private void TryPlugin(TunerSlot slot, string operation, Action action)
    {
        try { action(); }
        catch (Exception e) { _logger.LogError(e, "Plugin {Plugin} failed during {Operation} while the host rolled back", slot.Plugin.Label, operation); }
    }

    private void ApplyActive()
    {
        _modulesToSave.SetActive(_active);
        foreach (TunerSlot slot in _slots)
        {
            var mine = _active.Where(a => _adapterTypes.TryGetValue(a, out string? t) && t == slot.PeftType).ToList();
            Guard(slot, "set active adapters", () => slot.Model.SetActiveAdapters(mine));
        }
    }

    // The adapter's modules_to_save copies (filled from tensors when given); on failure the adapter leaves the tuner too: all or nothing.
    private void AddModulesToSave(string name, JsonObject config, TunerSlot slot, bool slotCreated, IReadOnlyDictionary<string, Tensor>? tensors)
    {
        try
        {
            _modulesToSave.Add(name, config, tensors);
        }
        catch
        {
            Guard(slot, "delete", () => slot.Model.DeleteAdapter(name));
            if (slotCreated || AdaptersOfSlot(slot).Count == 0) DropSlot(slot);
            throw;
        }
    }

    // peft_type read without trusting the JSON: a missing or non-string value is a config error naming the adapter.
    private static string PeftTypeOf(JsonObject config, string name) =>
        config["peft_type"] is JsonValue v && v.TryGetValue(out string? peftType) && !string.IsNullOrWhiteSpace(peftType)
            ? peftType
            : throw new Abstractions.Config.TunerConfigException($"Adapter '{name}': the config's peft_type must name a PEFT method, e.g. \"LORA\" (found {config["peft_type"]?.ToJsonString() ?? "none"}).");

    private void EnsureNewName(string name)
    {
        AdapterNames.EnsureValid(name);
        if (_adapterTypes.ContainsKey(name)) throw new ArgumentException($"An adapter named '{name}' already exists.", nameof(name));
    }

    private TunerSlot SlotOf(string adapter)
    {
        if (!_adapterTypes.TryGetValue(adapter, out string? peftType))
            throw new KeyNotFoundException($"No adapter named '{adapter}' (adapters: {string.Join(", ", _adapterOrder)}).");
        return _slots.First(s => s.PeftType == peftType);
    }

    private TunerSlot? FaultingPlugin(Exception e)
    {
        foreach (StackFrame frame in new StackTrace(e, false).GetFrames())
        {
            var assembly = frame.GetMethod()?.DeclaringType?.Assembly;
            if (assembly is null) continue;
            foreach (TunerSlot slot in _slots)
                if (slot.Plugin.Owns(assembly)) return slot;
        }
        return null;
    }

    private static T Guard<T>(TunerSlot slot, string operation, Func<T> action)
    {
        try { return action(); }
        // Input errors (a bad config, bad tensors, a bad argument, an unsupported operation) are the caller's to fix and keep their type;
        // anything else from plugin code is a fault of the plugin.
        catch (Exception e) when (e is not (PluginFaultException or Abstractions.Config.TunerConfigException or InvalidDataException or ArgumentException or NotSupportedException or KeyNotFoundException))
        {
            throw new PluginFaultException(slot.Plugin.Manifest.Id, slot.Plugin.Manifest.Version, operation, e);
        }
    }

    private static void Guard(TunerSlot slot, string operation, Action action) => Guard(slot, operation, () => { action(); return 0; });

    private sealed class Restorer(Action restore) : IDisposable
    {
        private Action? _restore = restore;

        public void Dispose()
        {
            _restore?.Invoke();
            _restore = null;
        }
    }

    private T Read<T>(Func<T> read)
    {
        _lock.EnterReadLock();
        try { return read(); }
        finally { _lock.ExitReadLock(); }
    }

    private void Write(Action write)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        _lock.EnterWriteLock();
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this); // disposed while this call waited
            write();
        }
        finally { _lock.ExitWriteLock(); }
    }
}
