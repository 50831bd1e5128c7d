using PeftHost.Abstractions.Config;
using PeftHost.Abstractions.State;
using TorchSharp.Modules;

namespace PeftHost.Abstractions.Tuning;

/// <summary>
/// A tuner applied to one model (PEFT's <c>LoraModel</c>, <c>IA3Model</c>, ...): it owns the
/// layers it injected and the adapters in them, keyed by adapter name. The base model's own
/// parameters are never changed except by an explicit merge.
/// </summary>
public interface ITunerModel : IDisposable
{
    /// <summary>The adapters held, in the order they were added.</summary>
    IReadOnlyList<string> Adapters { get; }

    /// <summary>The adapters used by the forward pass.</summary>
    IReadOnlyList<string> ActiveAdapters { get; }

    /// <summary>When false, the forward pass is exactly the base model's.</summary>
    bool Enabled { get; set; }

    /// <summary>Adds a new adapter with freshly initialised weights: selects the targets, injects or extends layers.</summary>
    /// <exception cref="TunerConfigException">The config does not fit this tuner or model (e.g. no module matches target_modules); nothing is changed.</exception>
    void AddAdapter(string name, TunerConfig config);

    /// <summary>Adds an adapter from exported state (a load, a hotswap or a plugin reload); nothing is changed on error.</summary>
    void ImportAdapter(AdapterState state);

    /// <summary>Exports an adapter as plain data (config, tensors by PEFT key names).</summary>
    AdapterState ExportAdapter(string name);

    /// <summary>Removes an adapter and the layers only it used.</summary>
    void DeleteAdapter(string name);

    /// <summary>Chooses the adapters the forward pass uses.</summary>
    void SetActiveAdapters(IReadOnlyList<string> names);

    /// <summary>Whether this method can merge adapters into the base weights (false for prompt learning).</summary>
    bool CanMerge { get; }

    /// <summary>
    /// Why the adapters cannot merge, when <see cref="CanMerge"/> is false (contract 1.1): the host's
    /// <see cref="NotSupportedException"/> for a merge carries it (e.g. a bottleneck adapter is a nonlinear
    /// function of the activations, so no weight change equals it). Default: null, no reason given.
    /// </summary>
    string? CannotMergeReason => null;

    /// <summary>The adapters merged into the base weights.</summary>
    IReadOnlyList<string> MergedAdapters { get; }

    /// <summary>
    /// Merges adapters into the base weights (PEFT's <c>merge_adapter</c>); with
    /// <paramref name="safeMerge"/>, NaN/Inf is checked before anything changes.
    /// </summary>
    /// <exception cref="NotSupportedException">The method cannot merge (the message says why).</exception>
    void Merge(IReadOnlyList<string> adapters, bool safeMerge);

    /// <summary>Takes every merged adapter out of the base weights.</summary>
    void Unmerge();

    /// <summary>
    /// Restores every module it replaced and frees what it created. Merged adapters stay in the
    /// base weights (PEFT's <c>merge_and_unload</c> is Merge then Detach); unmerge first for <c>unload</c>.
    /// </summary>
    void Detach();

    /// <summary>
    /// The parameters this tuner owns outside the base model's module tree, named as PEFT names them on
    /// its <c>PeftModel</c> (e.g. prompt learning's <c>prompt_encoder.&lt;adapter&gt;.embedding.weight</c>), so that
    /// the host lists and counts them with the model's. Default: none (a layer tuner's parameters live
    /// inside the model, in the layers it injected).
    /// </summary>
    IEnumerable<(string Name, Parameter Parameter)> NamedParameters() => [];
}
