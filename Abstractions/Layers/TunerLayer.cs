using System.Reflection;
using System.Runtime.CompilerServices;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Abstractions.Layers;

/// <summary>
/// The base of an injected layer (PEFT's <c>BaseTunerLayer</c>): wraps the original module as
/// <c>base_layer</c>, which it never changes, and owns only the adapters' parameters, registered
/// under PEFT's names with the adapter name inside (e.g. <c>lora_A.default.weight</c>).
/// </summary>
/// <remarks>
/// A layer declares its per-adapter containers once, in its constructor (PEFT's
/// <c>adapter_layer_names</c> and <c>other_param_names</c>): <see cref="AdapterModules{T}"/>,
/// <see cref="AdapterParameters"/> and <see cref="AdapterValues{T}"/>. From them this class derives
/// <see cref="Adapters"/>, <see cref="DeleteAdapter"/>, <see cref="SetAdapterTrainable"/> and
/// <see cref="AdapterTensors"/>. Layers built against contract 1.0, which declare nothing, override
/// <see cref="Adapters"/> and <see cref="DeleteAdapter"/> themselves and keep working as before.
/// </remarks>
public abstract class TunerLayer : nn.Module<Tensor, Tensor>
{
    /// <summary>The registered name of the wrapped module, as in PEFT.</summary>
    public const string BaseLayerName = "base_layer";

    // Whether a layer type overrides MergeInto, found once per type. Weak keys: a plugin's types must
    // not be kept alive by the shared contract, or its collectible load context would never unload.
    private static readonly ConditionalWeakTable<Type, StrongBox<bool>> MergeOverridden = new();

    private IReadOnlyList<string> _active = [];
    private readonly List<Declared> _containers = [];
    private readonly DeclaredAdapters _declaredAdapters;

    /// <summary>Wraps <paramref name="baseLayer"/>.</summary>
    protected TunerLayer(string name, nn.Module<Tensor, Tensor> baseLayer) : base(NativeCustomModule.Create(name), IntPtr.Zero)
    {
        // As base(name) would, without the 64 bytes TorchSharp's constructor leaks per module (NativeCustomModule).
        this.name = name;
        BaseLayer = baseLayer;
        register_module(BaseLayerName, baseLayer);
        _declaredAdapters = new DeclaredAdapters(_containers);
    }

    /// <summary>
    /// The wrapped module: the original one, or (methods combined on one module, contract 1.2) the layer of
    /// another method that wrapped it first, as in PEFT's mixed model. <see cref="GetBaseLayer()"/> reaches the original.
    /// </summary>
    public nn.Module<Tensor, Tensor> BaseLayer { get; private set; }

    /// <summary>
    /// The original module under every tuner layer (PEFT's <c>get_base_layer()</c>, contract 1.2): this layer's
    /// <see cref="BaseLayer"/>, or, where another method's layer is wrapped, that layer's, down the chain. The
    /// weights a layer reads, merges into or exports as the base are this module's.
    /// </summary>
    public nn.Module<Tensor, Tensor> GetBaseLayer() => GetBaseLayer(BaseLayer);

    /// <summary>The original module under <paramref name="module"/> (itself when it is not a tuner layer; contract 1.2).</summary>
    public static nn.Module<Tensor, Tensor> GetBaseLayer(nn.Module<Tensor, Tensor> module)
    {
        ArgumentNullException.ThrowIfNull(module);
        while (module is TunerLayer layer) module = layer.BaseLayer;
        return module;
    }

    /// <summary>
    /// The <c>peft_type</c> of the method that made this layer (contract 1.2), set by
    /// <see cref="Tuning.LayerTunerModel{TConfig, TLayer}"/> when it was given its tuner; null otherwise.
    /// Messages about combined methods name it.
    /// </summary>
    public string? PeftType { get; internal set; }

    /// <summary>
    /// Why this layer cannot wrap <paramref name="inner"/>, another method's layer already on the module (or a
    /// layer further down that chain), or null when it can (contract 1.2; PEFT's mixed model nests the second
    /// method's layer around the first's). A layer that wraps one runs <see cref="BaseLayer"/> for the inner,
    /// adapted output and reads base weights through <see cref="GetBaseLayer()"/>. Default: refused, since a
    /// layer written before 1.2 may read its base layer as the original module.
    /// </summary>
    public virtual string? CannotWrapReason(TunerLayer inner) =>
        $"{GetType().Name} does not declare that it can wrap another method's layer (TunerLayer.CannotWrapReason, contract 1.2)";

    /// <summary>
    /// Why another method's layer <paramref name="outer"/> must not wrap this one, or null when it may (contract 1.2).
    /// Default: null (the outer layer only calls this layer's forward and reads the original module's weights).
    /// </summary>
    public virtual string? CannotBeWrappedReason(TunerLayer outer) => null;

    /// <summary>
    /// Whether this layer's adapters change the effective bias of the original module's output (BitFit's trained
    /// bias; contract 1.2), so that a method that takes the original bias out and puts it back around its own
    /// transform (OFT) would transform the change: such pairs refuse to combine. Default: false.
    /// </summary>
    public virtual bool ChangesBias => false;

    // Takes a layer of another method out of the chain under this one (it wraps what that layer wrapped).
    internal void ReplaceBaseLayer(nn.Module<Tensor, Tensor> baseLayer)
    {
        BaseLayer = baseLayer;
        // In place, so that the registered children keep their order.
        ((IDictionary<string, nn.Module>)_internal_submodules)[BaseLayerName] = baseLayer;
    }

    /// <summary>The adapters this layer holds: those with an entry in any declared container.</summary>
    public virtual IReadOnlyCollection<string> Adapters => _declaredAdapters;

    /// <summary>The adapters the forward pass uses (those this layer does not hold are ignored).</summary>
    public IReadOnlyList<string> ActiveAdapters
    {
        get => _active;
        set => _active = [.. value];
    }

    /// <summary>When true, the forward pass is exactly the base layer's.</summary>
    public bool Disabled { get; set; }

    /// <summary>Removes one adapter's parameters and settings: its entry in every declared container.</summary>
    public virtual void DeleteAdapter(string adapter)
    {
        foreach (Declared c in _containers) c.Container.Remove(adapter);
    }

    /// <summary>
    /// Sets whether an adapter's tensors train: the entries of the containers declared trainable (PEFT's
    /// <c>adapter_layer_names</c>); the others never train. The tuner model calls this with PEFT's rule
    /// (active and not in inference mode). A layer that declared no container is left as it is.
    /// </summary>
    public virtual void SetAdapterTrainable(string adapter, bool trainable)
    {
        foreach (Declared c in _containers)
        {
            if (!c.Trainable) continue;
            foreach ((_, Tensor value) in c.Container.EntryTensors(adapter))
                if (value.requires_grad != trainable) value.requires_grad = trainable;
        }
    }

    /// <summary>Whether this layer declared its adapter containers (contract 1.1); layers of contract 1.0 did not.</summary>
    internal bool DeclaresContainers => _containers.Count > 0;

    /// <summary>
    /// Declares a container of per-adapter modules, registered as <paramref name="name"/> (e.g. <c>lora_A</c>,
    /// whose entries are named <c>lora_A.&lt;adapter&gt;.weight</c>). Call it once per container, in the constructor.
    /// </summary>
    /// <param name="name">The container's registered name, PEFT's (e.g. <c>lora_A</c>).</param>
    /// <param name="trainable">Whether its tensors train with the adapter (false for e.g. dropout modules).</param>
    /// <typeparam name="T">The module type of each entry.</typeparam>
    protected AdapterModuleDict<T> AdapterModules<T>(string name, bool trainable = true) where T : nn.Module
    {
        var container = new AdapterModuleDict<T>();
        Declare(name, container, trainable);
        register_module(name, container);
        return container;
    }

    /// <summary>
    /// Declares a container of per-adapter parameters, registered as <paramref name="name"/> (e.g. <c>ia3_l</c>,
    /// whose entries are named <c>ia3_l.&lt;adapter&gt;</c>). Call it once per container, in the constructor.
    /// </summary>
    /// <param name="name">The container's registered name, PEFT's.</param>
    /// <param name="trainable">Whether its parameters train with the adapter (false for e.g. AdaLoRA's <c>ranknum</c>).</param>
    protected AdapterParameterDict AdapterParameters(string name, bool trainable = true)
    {
        var container = new AdapterParameterDict();
        Declare(name, container, trainable);
        register_module(name, container);
        return container;
    }

    /// <summary>
    /// Declares a store of per-adapter settings that are not tensors (PEFT's <c>other_param_names</c>, e.g.
    /// <c>r</c>, <c>scaling</c>): deleted with the adapter, never saved.
    /// </summary>
    /// <param name="name">The setting's name, PEFT's (for messages).</param>
    /// <typeparam name="T">The value type.</typeparam>
    protected AdapterValueDict<T> AdapterValues<T>(string name)
    {
        var container = new AdapterValueDict<T>();
        Declare(name, container, trainable: false);
        return container;
    }

    private void Declare(string name, IAdapterContainer container, bool trainable)
    {
        if (string.IsNullOrWhiteSpace(name) || name.Contains('.') || name == BaseLayerName)
            throw new ArgumentException($"{GetType().Name}: '{name}' cannot name an adapter container (it must be non-empty, contain no '.', and not be '{BaseLayerName}').", nameof(name));
        if (_containers.Any(c => c.Name == name))
            throw new ArgumentException($"{GetType().Name}: an adapter container named '{name}' is already declared.", nameof(name));
        _containers.Add(new Declared(name, container, trainable));
    }

    private readonly List<string> _merged = [];

    /// <summary>The adapters merged into the base layer's weights, in merge order.</summary>
    public IReadOnlyList<string> MergedAdapters => _merged;

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        // Merged adapters are in the base weights already; disabling needs them out first (PEFT unmerges too).
        if (Disabled) return BaseLayer.forward(input);
        if (AdapterRouting.Current is { } rows) return ForwardMixedBatch(input, rows);
        // The hot path: usually every active adapter is held and unmerged, and no list is built.
        IReadOnlyList<string> active = _active;
        foreach (string a in _active)
        {
            if (Adapters.Contains(a) && !_merged.Contains(a)) continue;
            active = _active.Where(x => Adapters.Contains(x) && !_merged.Contains(x)).ToList();
            break;
        }
        return active.Count == 0 ? BaseLayer.forward(input) : ForwardWithAdapters(input, active);
    }

    /// <summary>The forward pass with the given active adapters (all held by this layer, unmerged, at least one).</summary>
    protected abstract Tensor ForwardWithAdapters(Tensor input, IReadOnlyList<string> activeAdapters);

    /// <summary>
    /// Mixed-batch forward (PEFT's <c>adapter_names</c>): row i uses adapter <paramref name="rowAdapters"/>[i]
    /// (<see cref="AdapterRouting.BaseModel"/>, or an adapter this layer does not hold: the base layer).
    /// The default groups rows by adapter and runs each group once.
    /// </summary>
    protected virtual Tensor ForwardMixedBatch(Tensor input, IReadOnlyList<string> rowAdapters)
    {
        if (rowAdapters.Count != input.shape[0])
            throw new ArgumentException($"adapter_names has {rowAdapters.Count} entries for a batch of {input.shape[0]} rows.");
        if (_merged.Count > 0)
            throw new InvalidOperationException($"Mixed-batch inference needs unmerged adapters; merged: {string.Join(", ", _merged)}. Unmerge first.");
        using var scope = NewDisposeScope();
        Tensor? output = null;
        foreach (var group in rowAdapters.Select((name, row) => (name, row)).GroupBy(g => g.name))
        {
            using Tensor index = tensor(group.Select(g => (long)g.row).ToArray(), device: input.device);
            // Another method's layer under this one (contract 1.2) routes the same rows to the same adapter.
            using IDisposable? route = BaseLayer is TunerLayer ? AdapterRouting.Begin(group.Select(g => g.name).ToList()) : null;
            Tensor rows = input.index_select(0, index);
            Tensor y = Adapters.Contains(group.Key) ? ForwardWithAdapters(rows, [group.Key]) : BaseLayer.forward(rows);
            output ??= zeros([input.shape[0], .. y.shape[1..]], dtype: y.dtype, device: y.device);
            output.index_copy_(0, index, y);
        }
        return scope.MoveToOuter(output!);
    }

    /// <summary>Whether this layer can merge adapters into the base weights. Default: whether its type overrides <see cref="MergeInto"/>.</summary>
    public virtual bool CanMerge => MergeOverridden.GetValue(GetType(), OverridesMergeInto).Value;

    private static StrongBox<bool> OverridesMergeInto(Type type)
    {
        MethodInfo? merge = type.GetMethod(nameof(MergeInto), BindingFlags.Instance | BindingFlags.NonPublic, [typeof(string), typeof(bool)]);
        return new StrongBox<bool>(merge is not null && merge.DeclaringType != typeof(TunerLayer));
    }

    /// <summary>
    /// Adds the adapter to the base layer's weights (in place). With <paramref name="safeMerge"/>, the
    /// merged weights are computed aside and checked for NaN/Inf before anything is changed.
    /// </summary>
    public void Merge(string adapter, bool safeMerge)
    {
        if (!Adapters.Contains(adapter)) return;
        if (_merged.Contains(adapter)) throw new InvalidOperationException($"Adapter '{adapter}' is already merged.");
        if (!CanMerge) throw new NotSupportedException($"{GetType().Name} cannot merge adapters into its base layer.");
        using (no_grad()) MergeInto(adapter, safeMerge);
        _merged.Add(adapter);
    }

    /// <summary>Takes every merged adapter out of the base weights, newest first.</summary>
    public void Unmerge()
    {
        using (no_grad())
        {
            for (int i = _merged.Count - 1; i >= 0; i--) UnmergeFrom(_merged[i]);
        }
        _merged.Clear();
    }

    /// <summary>Takes the most recently merged adapter out again (undoing a merge that failed elsewhere).</summary>
    /// <exception cref="InvalidOperationException"><paramref name="adapter"/> is not the last one merged.</exception>
    public void UnmergeLatest(string adapter)
    {
        if (_merged.Count == 0 || _merged[^1] != adapter)
            throw new InvalidOperationException($"Adapter '{adapter}' is not the last adapter merged into this layer.");
        using (no_grad()) UnmergeFrom(adapter);
        _merged.RemoveAt(_merged.Count - 1);
    }

    /// <summary>Merges one adapter into the base weights (no grad; called once per adapter).</summary>
    protected virtual void MergeInto(string adapter, bool safeMerge) => throw new NotSupportedException($"{GetType().Name} cannot merge.");

    /// <summary>Undoes <see cref="MergeInto"/> for one adapter.</summary>
    protected virtual void UnmergeFrom(string adapter) => throw new NotSupportedException($"{GetType().Name} cannot unmerge.");

    /// <summary>Throws <see cref="InvalidDataException"/> when a tensor holds NaN or Inf (safe merge), naming the adapter.</summary>
    protected static void EnsureFinite(Tensor merged, string adapter)
    {
        if (!torch.isfinite(merged).all().item<bool>())
            throw new InvalidDataException($"NaNs or Infs detected in the merged weights: adapter '{adapter}' seems to be broken; nothing was merged.");
    }

    /// <summary>
    /// One adapter's parameters and buffers by PEFT's key names relative to this layer, the adapter
    /// name removed: <c>lora_A.default.weight</c> is listed as <c>lora_A.weight</c>, <c>ia3_l.default</c>
    /// as <c>ia3_l</c>. Built from the declared containers (container name + the entry's own names), so
    /// an adapter never picks up another's tensors whatever the names; a layer that declared none
    /// (contract 1.0) is read by splitting its parameter names at the adapter's name.
    /// </summary>
    public IEnumerable<(string Key, Tensor Value)> AdapterTensors(string adapter)
    {
        if (_containers.Count == 0) return ParsedAdapterTensors(adapter);
        return _containers.SelectMany(c => c.Container.EntryTensors(adapter).Select(t => (t.Name.Length == 0 ? c.Name : c.Name + "." + t.Name, t.Value)));
    }

    private IEnumerable<(string Key, Tensor Value)> ParsedAdapterTensors(string adapter)
    {
        foreach ((string name, Tensor value) in named_parameters().Select(p => (p.name, (Tensor)p.parameter)).Concat(named_buffers()))
        {
            if (name.StartsWith(BaseLayerName + ".", StringComparison.Ordinal)) continue;
            string[] parts = name.Split('.');
            int at = Array.IndexOf(parts, adapter);
            if (at < 0) continue;
            yield return (string.Join('.', parts.Where((_, i) => i != at)), value);
        }
    }

    /// <summary>
    /// Disposes only what this layer created: the base layer is unregistered first, because
    /// disposing a module disposes its registered children and the base weights are not ours.
    /// </summary>
    protected override void Dispose(bool disposing)
    {
        if (disposing) _internal_submodules.Remove(BaseLayerName);
        base.Dispose(disposing);
    }

    private sealed record Declared(string Name, IAdapterContainer Container, bool Trainable);

    // The adapters with an entry in any declared container, as a live, read-only view. It is an
    // ICollection so that LINQ's Contains (which the forward pass calls every time) asks the
    // containers directly instead of enumerating: no allocation on the hot path.
    private sealed class DeclaredAdapters(List<Declared> containers) : ICollection<string>, IReadOnlyCollection<string>
    {
        public int Count => Union().Count;

        public bool IsReadOnly => true;

        public bool Contains(string item)
        {
            foreach (Declared c in containers)
                if (c.Container.Contains(item)) return true;
            return false;
        }

        public void CopyTo(string[] array, int arrayIndex) => Union().CopyTo(array, arrayIndex);

        public IEnumerator<string> GetEnumerator() => Union().GetEnumerator();

        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();

        public void Add(string item) => throw ReadOnly();

        public bool Remove(string item) => throw ReadOnly();

        public void Clear() => throw ReadOnly();

        private static NotSupportedException ReadOnly() => new("A layer's adapters follow from its containers: add or delete an adapter through the layer.");

        private List<string> Union() => containers.SelectMany(c => c.Container.Keys).Distinct(StringComparer.Ordinal).ToList();
    }
}
