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
    /// </summary>
    /// <param name="forward">The code that calls the model.</param>
    /// <param name="adapterNames">
    /// Mixed-batch inference (PEFT's <c>adapter_names</c>): the adapter of each batch row,
    /// <see cref="AdapterRouting.BaseModel"/> ("__base__") for none; null: the active adapters serve every row.
    /// </param>
    /// <exception cref="KeyNotFoundException"><paramref name="adapterNames"/> names an adapter this model does not have.</exception>
    public T Run<T>(Func<T> forward, IReadOnlyList<string>? adapterNames = null)
    {
        if (adapterNames is null) return RunLocked(forward);
        foreach (string n in adapterNames.Distinct())
            if (n != AdapterRouting.BaseModel && !Read(() => _adapterTypes.ContainsKey(n)))
                throw new KeyNotFoundException($"adapter_names names '{n}', which is not an adapter (adapters: {string.Join(", ", Adapters)}).");
        using IDisposable routing = AdapterRouting.Begin(adapterNames);
        return RunLocked(forward);
    }

    /// <summary>The forward pass of a base model that is a <c>Module&lt;Tensor, Tensor&gt;</c> (see <see cref="Run{T}"/> for <paramref name="adapterNames"/>).</summary>
    public Tensor Forward(Tensor input, IReadOnlyList<string>? adapterNames = null)
    {
        var module = BaseModel as nn.Module<Tensor, Tensor> ?? throw new InvalidOperationException($"The base model {BaseModel.GetType().Name} is not a Module<Tensor, Tensor>: call Run with its own forward.");
        return Run(() => module.forward(input), adapterNames);
    }

    private T RunLocked<T>(Func<T> forward)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        _lock.EnterReadLock();
        try
        {
            return forward();
        }
        // The model's input checks and a cancellation are the caller's, even when plugin code is on the stack (prompt learning's forward).
        catch (Exception e) when (e is not (PluginFaultException or ModelInputException or OperationCanceledException) && FaultingPlugin(e) is { } slot)
        {
            throw new PluginFaultException(slot.Plugin.Manifest.Id, slot.Plugin.Manifest.Version, "forward", e);
        }
        finally
        {
            _lock.ExitReadLock();
        }
    }
}
