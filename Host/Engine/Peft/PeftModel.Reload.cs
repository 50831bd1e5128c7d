using PeftHost.Abstractions.Layers;
using PeftHost.Abstractions.State;
using PeftHost.Engine.Plugins;
using static TorchSharp.torch;

namespace PeftHost.Engine.Peft;

// Hot reload (IPluginUser): the adapters a plugin serves are exported as plain data, the old tuner
// detached, the new one attached and the data imported; all or nothing.
public sealed partial class PeftModel
{
    /// <summary>Whether an adapter of this model is served by <paramref name="plugin"/>.</summary>
    bool IPluginUser.Uses(PluginAssembly plugin) => Read(() => _slots.Any(s => ReferenceEquals(s.Plugin, plugin)));

    /// <summary>
    /// Hands this model's adapters from <paramref name="oldPlugin"/> to <paramref name="newPlugin"/>:
    /// snapshot, detach (the base restored exactly), attach the new tuners, restore. Holds the write
    /// lock until the returned swap is committed or rolled back. On failure here, the old version is
    /// restored before the exception leaves.
    /// </summary>
    TunerSwap IPluginUser.BeginTunerSwap(PluginAssembly oldPlugin, PluginAssembly newPlugin)
    {
        _lock.EnterWriteLock();
        var snapshot = new List<(string PeftType, PluginAssembly Plugin, List<AdapterState> States)>();
        List<TunerSlot> oldSlots = Rebuilt(oldPlugin);
        // The tuners left attached; those after them are the ones attached again.
        int kept = _slots.Count;
        try
        {
            foreach (TunerSlot slot in oldSlots)
                snapshot.Add((slot.PeftType, slot.Plugin, slot.Model.Adapters.Select(a => Guard(slot, "export", () => slot.Model.ExportAdapter(a))).ToList()));
            foreach (TunerSlot slot in oldSlots) DropSlot(slot);
            kept = _slots.Count;
            try
            {
                Restore(snapshot, oldPlugin, newPlugin);
            }
            catch
            {
                foreach (TunerSlot slot in _slots.Skip(kept).ToList()) DropSlot(slot);
                Restore(snapshot, oldPlugin, oldPlugin);
                throw;
            }
        }
        catch
        {
            Dispose(snapshot);
            _lock.ExitWriteLock();
            throw;
        }

        return new TunerSwap(
            commit: () =>
            {
                Dispose(snapshot);
                _lock.ExitWriteLock();
            },
            rollback: () =>
            {
                try
                {
                    foreach (TunerSlot slot in _slots.Skip(kept).ToList()) DropSlot(slot);
                    Restore(snapshot, oldPlugin, oldPlugin);
                }
                finally
                {
                    Dispose(snapshot);
                    _lock.ExitWriteLock();
                }
            });
    }

    // The tuners a reload of the plugin detaches and attaches again, in attach order: the plugin's own; and where another
    // method's layer wraps one of theirs (methods combined on one module), every tuner attached after the first of them
    // too, so that each module's layers come back nested in the same order.
    private List<TunerSlot> Rebuilt(PluginAssembly plugin)
    {
        int first = _slots.FindIndex(s => ReferenceEquals(s.Plugin, plugin));
        if (first < 0) return [];
        bool wrapped = BaseModel.modules().OfType<TunerLayer>().Any(outer =>
            outer.BaseLayer is TunerLayer inner && SlotOfLayer(inner) is { } i && ReferenceEquals(i.Plugin, plugin) && !ReferenceEquals(SlotOfLayer(outer), i));
        return wrapped ? _slots.Skip(first).ToList() : _slots.Where(s => ReferenceEquals(s.Plugin, plugin)).ToList();
    }

    // Attaches the snapshot's tuners again, in order: those of oldPlugin from usePlugin, the others from their own plugin.
    private void Restore(List<(string PeftType, PluginAssembly Plugin, List<AdapterState> States)> snapshot, PluginAssembly oldPlugin, PluginAssembly usePlugin)
    {
        foreach ((string peftType, PluginAssembly own, List<AdapterState> states) in snapshot)
        {
            PluginAssembly plugin = ReferenceEquals(own, oldPlugin) ? usePlugin : own;
            if (!plugin.Tuners.ContainsKey(peftType))
                throw new InvalidOperationException($"Plugin {plugin.Label} does not serve {peftType}, which adapters {string.Join(", ", states.Select(s => s.Name))} use.");
            TunerSlot slot = Attach(peftType, plugin);
            foreach (AdapterState state in states) Guard(slot, "apply", () => slot.Model.ImportAdapter(state));
        }
        // The new version's layers start in TorchSharp's default training mode; each takes the mode of the module
        // it wraps, so that a reload changes nothing the forward does (an adapter's dropout stays off in eval).
        foreach (nn.Module module in BaseModel.modules())
            if (module is TunerLayer layer) layer.train(layer.BaseLayer.training);
        ApplyActive();
        foreach (TunerSlot s in _slots) Guard(s, "enable", () => s.Model.Enabled = _enabled);
    }

    private static void Dispose(List<(string PeftType, PluginAssembly Plugin, List<AdapterState> States)> snapshot)
    {
        foreach ((_, _, List<AdapterState> states) in snapshot)
            foreach (AdapterState s in states) s.Dispose();
    }
}
