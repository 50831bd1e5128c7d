using PeftHost.Abstractions.Layers;
using PeftHost.Engine.Plugins;
using PeftHost.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Engine.Peft;

// The forward entry points: any forward under the read lock (Run), the Module<Tensor, Tensor> one
// (Forward), and the causal LM one (PeftModel.CausalLM.cs); each takes PEFT's optional adapter_names.
public sealed partial class PeftModel
{
    /// <summary>
    /// Runs a forward pass (any code that calls the model) under the read lock. An exception thrown
    /// by a plugin's code becomes a <see cref="PluginFaultException"/> naming it; the model stays usable.
    /// A <see cref="NotSupportedException"/> (what the active adapters cannot do, e.g. two LN tuning adapters
    /// on one module) keeps its type.
    /// </summary>
    /// <param name="forward">The code that calls the model.</param>
    /// <param name="adapterNames">
    /// Mixed-batch inference (PEFT's <c>adapter_names</c>): the adapter of each batch row,
    /// <see cref="AdapterRouting.BaseModel"/> ("__base__") for none; null: the active adapters serve every row.
    /// </param>
    /// <exception cref="KeyNotFoundException"><paramref name="adapterNames"/> names an adapter this model does not have.</exception>
    /// <exception cref="InvalidOperationException">
    /// <paramref name="adapterNames"/> is given while adapters are merged (PEFT refuses mixed batches then), unless every row
    /// names the one active adapter and nothing else is merged: those rows run as that adapter's plain forward.
    /// </exception>
    /// <exception cref="PluginFaultException">A plugin threw, or the output holds NaN or infinity with adapters active.</exception>
    public T Run<T>(Func<T> forward, IReadOnlyList<string>? adapterNames = null)
    {
        ArgumentNullException.ThrowIfNull(forward);
        if (adapterNames is null) return RunLocked(forward);
        return RunLocked(() =>
        {
            // Checked under the read lock, so no merge or delete comes between the check and the forward.
            if (CheckAdapterNames(adapterNames)) return forward();
            using IDisposable routing = AdapterRouting.Begin(adapterNames);
            return forward();
        });
    }

    /// <summary>The forward pass of a base model that is a <c>Module&lt;Tensor, Tensor&gt;</c> (see <see cref="Run{T}"/> for <paramref name="adapterNames"/>).</summary>
    public Tensor Forward(Tensor input, IReadOnlyList<string>? adapterNames = null)
    {
        ArgumentNullException.ThrowIfNull(input);
        CheckRows(input, adapterNames, nameof(input));
        var module = BaseModel as nn.Module<Tensor, Tensor> ?? throw new InvalidOperationException($"The base model {BaseModel.GetType().Name} is not a Module<Tensor, Tensor>: call Run with its own forward.");
        return Run(() => module.forward(input), adapterNames);
    }

    /// <summary>
    /// Mixed batches: every name an adapter (or "__base__") and nothing merged, as PEFT requires; except that rows all
    /// naming the one active adapter, merged or not, are that adapter's plain forward (true: run it without routing).
    /// </summary>
    private bool CheckAdapterNames(IReadOnlyList<string> adapterNames)
    {
        foreach (string? n in adapterNames.Distinct())
        {
            if (n is null) throw new ArgumentException("adapter_names holds null; name an adapter or \"__base__\" for each row.", nameof(adapterNames));
            if (n != AdapterRouting.BaseModel && !_adapterTypes.ContainsKey(n))
                throw new KeyNotFoundException($"adapter_names names '{n}', which is not an adapter (adapters: {string.Join(", ", _adapterOrder)}).");
        }
        IReadOnlyList<string> merged = MergedNow();
        if (merged.Count == 0) return false;
        if (_enabled && _active is [string only] && adapterNames.All(n => n == only) && merged.All(m => m == only)) return true;
        throw new InvalidOperationException($"adapter_names (a mixed batch) needs unmerged adapters; merged now: {string.Join(", ", merged)}. Unmerge first, or run without adapter_names.");
    }

    private static void CheckRows(Tensor input, IReadOnlyList<string>? adapterNames, string parameter)
    {
        if (adapterNames is not null && (input.dim() == 0 || adapterNames.Count != input.shape[0]))
            throw new ArgumentException($"adapter_names has {adapterNames.Count} entries for a batch of {(input.dim() == 0 ? 0 : input.shape[0])} rows ({parameter} [{string.Join(", ", input.shape)}]); give one per row.", nameof(adapterNames));
    }

    private T RunLocked<T>(Func<T> forward)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        _lock.EnterReadLock();
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this); // disposed while this call waited
            T result = forward();
            if (result is Tensor output) CheckFinite(output);
            return result;
        }
        catch (NotFiniteNumberException e) when (ServingSlots() is [TunerSlot first, ..])
        {
            // A generation step's logits (TokenGenerator) went NaN with adapters active.
            throw new PluginFaultException(first.Plugin.Manifest.Id, first.Plugin.Manifest.Version, "forward", e);
        }
        // The model's input checks and a cancellation are the caller's, even when plugin code is on the stack (prompt
        // learning's forward); as for every other operation (Guard), so is an operation the method or its config cannot
        // do, which keeps its type (LN tuning and BitFit run one adapter per module at a time).
        catch (Exception e) when (e is not (PluginFaultException or ModelInputException or OperationCanceledException or NotSupportedException) && FaultingPlugin(e) is { } slot)
        {
            throw new PluginFaultException(slot.Plugin.Manifest.Id, slot.Plugin.Manifest.Version, "forward", e);
        }
        finally
        {
            _lock.ExitReadLock();
        }
    }
}
