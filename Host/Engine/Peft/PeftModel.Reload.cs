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
        var snapshot = new List<(string PeftType, List<AdapterState> States)>();
        List<TunerSlot> oldSlots = _slots.Where(s => ReferenceEquals(s.Plugin, oldPlugin)).ToList();
        try
        {
            foreach (TunerSlot slot in oldSlots)
                snapshot.Add((slot.PeftType, slot.Model.Adapters.Select(a => Guard(slot, "export", () => slot.Model.ExportAdapter(a))).ToList()));
            foreach (TunerSlot slot in oldSlots) DropSlot(slot);
            try
            {
                Restore(snapshot, newPlugin);
            }
            catch
            {
                foreach (TunerSlot slot in _slots.Where(s => ReferenceEquals(s.Plugin, newPlugin)).ToList()) DropSlot(slot);
                Restore(snapshot, oldPlugin);
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
                    foreach (TunerSlot slot in _slots.Where(s => ReferenceEquals(s.Plugin, newPlugin)).ToList()) DropSlot(slot);
                    Restore(snapshot, oldPlugin);
                }
                finally
                {
                    Dispose(snapshot);
                    _lock.ExitWriteLock();
                }
            });
    }

    private void Restore(List<(string PeftType, List<AdapterState> States)> snapshot, PluginAssembly plugin)
    {
        foreach ((string peftType, List<AdapterState> states) in snapshot)
        {
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

    private static void Dispose(List<(string PeftType, List<AdapterState> States)> snapshot)
    {
        foreach ((_, List<AdapterState> states) in snapshot)
            foreach (AdapterState s in states) s.Dispose();
    }
}
