using PeftHost.Abstractions.Layers;
using PeftHost.Abstractions.State;
using PeftHost.Abstractions.Tuning;
using PeftHost.Engine.Plugins;
using static TorchSharp.torch;

namespace PeftHost.Engine.Peft;

// Hot reload (IPluginUser): the adapters a plugin serves are unmerged and exported as plain data, the old tuner's
// layers taken out of the model (kept, not freed), the new tuner attached, the data imported and merged again. A
// rollback puts the old layers back exactly as they were (and merges again), so it needs no import and works even
// when the old version's export was malformed; a commit frees them. All or nothing.
public sealed partial class PeftModel
{
    /// <summary>Whether an adapter of this model is served by <paramref name="plugin"/>.</summary>
    bool IPluginUser.Uses(PluginAssembly plugin) => Read(() => !_disposed && _slots.Any(s => ReferenceEquals(s.Plugin, plugin)));

    /// <summary>
    /// Hands this model's adapters from <paramref name="oldPlugin"/> to <paramref name="newPlugin"/>:
    /// snapshot, take the old layers out (the base restored exactly), attach the new tuners, import. Holds the write
    /// lock until the returned swap is committed or rolled back. On failure here, the old version is back in place
    /// before the exception leaves.
    /// </summary>
    TunerSwap IPluginUser.BeginTunerSwap(PluginAssembly oldPlugin, PluginAssembly newPlugin)
    {
        _lock.EnterWriteLock();
        if (_disposed)
        {
            // Disposed between the catalog's Uses and now: nothing of it runs the plugin any more.
            _lock.ExitWriteLock();
            return new TunerSwap(commit: () => { }, rollback: () => { });
        }
        var snapshot = new List<(string PeftType, PluginAssembly Plugin, List<AdapterState> States)>();
        var suspended = new List<SuspendedSlot>();
        var attached = new List<TunerSlot>();
        List<TunerSlot> oldSlots = Rebuilt(oldPlugin);
        // Merged adapters live in the base weights, which the layers' removal leaves as they are: they are taken out
        // first (the new version would add them a second time) and merged again by whichever version serves.
        var merged = new List<(TunerSlot Old, List<string> Names)>();
        void MergeOldAgain()
        {
            foreach ((TunerSlot slot, List<string> names) in merged)
                if (_slots.Contains(slot)) TryPlugin(slot, "merge", () => slot.Model.Merge(names, false));
        }
        try
        {
            foreach (TunerSlot slot in oldSlots)
            {
                List<string> names = [.. Guard(slot, "list merged adapters", () => slot.Model.MergedAdapters ?? [])];
                if (names.Count == 0) continue;
                Guard(slot, "unmerge", slot.Model.Unmerge);
                merged.Add((slot, names));
            }
            foreach (TunerSlot slot in oldSlots)
            {
                var states = new List<AdapterState>();
                snapshot.Add((slot.PeftType, slot.Plugin, states));
                foreach (string a in AdaptersOfSlot(slot)) states.Add(Exported(slot, a));
            }
            // Newest first, as wrappers nest in the order the tuners were attached.
            foreach (TunerSlot slot in Enumerable.Reverse(oldSlots)) suspended.Insert(0, Suspend(slot));
            try
            {
                Restore(snapshot, oldPlugin, newPlugin, attached);
                foreach ((TunerSlot old, List<string> names) in merged)
                {
                    TunerSlot slot = attached.First(x => x.PeftType == old.PeftType);
                    Guard(slot, "merge", () => slot.Model.Merge(names, false));
                }
            }
            catch
            {
                DropSlots(attached);
                Resume(suspended);
                throw;
            }
        }
        catch
        {
            try
            {
                // A failure while taking the old layers out: put back those already out; merge again what was merged.
                if (suspended.Count > 0 && !_slots.Contains(suspended[0].Slot)) Resume(suspended);
                MergeOldAgain();
            }
            finally
            {
                Dispose(snapshot);
                _lock.ExitWriteLock();
            }
            throw;
        }

        return new TunerSwap(
            commit: () =>
            {
                try
                {
                    Retire(suspended, attached);
                }
                finally
                {
                    Dispose(snapshot);
                    _lock.ExitWriteLock();
                }
            },
            rollback: () =>
            {
                try
                {
                    DropSlots(attached);
                    Resume(suspended);
                    MergeOldAgain();
                }
                finally
                {
                    Dispose(snapshot);
                    _lock.ExitWriteLock();
                }
            });
    }

    // The tuners a reload of the plugin takes out and attaches again, in attach order: the plugin's own; and where another
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

    // Attaches the snapshot's tuners again, in order (each added to attached as it is): those of oldPlugin from
    // usePlugin, the others (re-attached to keep the nesting) from their own plugin.
    private void Restore(List<(string PeftType, PluginAssembly Plugin, List<AdapterState> States)> snapshot, PluginAssembly oldPlugin,
        PluginAssembly usePlugin, List<TunerSlot> attached)
    {
        foreach ((string peftType, PluginAssembly own, List<AdapterState> states) in snapshot)
        {
            PluginAssembly plugin = ReferenceEquals(own, oldPlugin) ? usePlugin : own;
            if (!plugin.Tuners.ContainsKey(peftType))
                throw new InvalidOperationException($"Plugin {plugin.Label} does not serve {peftType}, which adapters {string.Join(", ", states.Select(s => s.Name))} use.");
            TunerSlot slot = Attach(peftType, plugin);
            attached.Add(slot);
            foreach (AdapterState state in states) Guard(slot, "apply", () => slot.Model.ImportAdapter(state));
            // Buffers padded for hotswap are exported at the adapters' own ranks: the new version pads them again.
            if (_hotswapRank is int rank && slot.Model is IHotswapModel h) Guard(slot, "prepare hotswap", () => h.PrepareForHotswap(rank));
        }
        // The new version's layers start in TorchSharp's default training mode; each takes the mode of the module
        // it wraps, so that a reload changes nothing the forward does (an adapter's dropout stays off in eval).
        foreach (nn.Module module in BaseModel.modules())
            if (module is TunerLayer layer) layer.train(layer.BaseLayer.training);
        ApplyActive();
        foreach (TunerSlot s in _slots) Guard(s, "enable", () => s.Model.Enabled = _enabled);
    }

    // Detaches the given tuners, newest first (outer layers before the ones they wrap).
    private void DropSlots(List<TunerSlot> slots)
    {
        foreach (TunerSlot slot in Enumerable.Reverse(slots.Where(_slots.Contains).ToList())) DropSlot(slot);
        slots.Clear();
    }

    // Takes a tuner's layers out of the model and the slot out of the list, keeping both to put back.
    private SuspendedSlot Suspend(TunerSlot slot)
    {
        int index = _slots.IndexOf(slot);
        IReadOnlyList<string> paths = slot.Surgeon.ReplacedPaths; // oldest first
        List<nn.Module> wrappers = [.. slot.Surgeon.RestoreAll().Reverse()]; // RestoreAll undoes newest first
        _slots.RemoveAt(index);
        return new SuspendedSlot(slot, index, [.. paths.Zip(wrappers)]);
    }

    // Puts suspended tuners back exactly: their layers at the same paths in the same order, their slots at the same places.
    private void Resume(List<SuspendedSlot> suspended)
    {
        foreach (SuspendedSlot s in suspended)
        {
            foreach ((string path, nn.Module wrapper) in s.Layers) s.Slot.Surgeon.Replace(path, wrapper);
            _slots.Insert(Math.Min(s.Index, _slots.Count), s.Slot);
        }
        TryApplyActive();
        foreach (SuspendedSlot s in suspended) TryPlugin(s.Slot, "enable", () => s.Slot.Model.Enabled = _enabled);
    }

    // Frees the old version's tuners the way a plugin expects, through its own detach: the new layers step out for
    // a moment, the old ones go back in and are detached, the new ones return.
    private void Retire(List<SuspendedSlot> old, List<TunerSlot> replacing)
    {
        var current = new List<SuspendedSlot>();
        foreach (TunerSlot slot in Enumerable.Reverse(replacing)) current.Insert(0, Suspend(slot));
        foreach (SuspendedSlot s in old)
        {
            foreach ((string path, nn.Module wrapper) in s.Layers) s.Slot.Surgeon.Replace(path, wrapper);
            _slots.Insert(Math.Min(s.Index, _slots.Count), s.Slot);
        }
        foreach (SuspendedSlot s in Enumerable.Reverse(old)) DropSlot(s.Slot);
        Resume(current);
    }

    private static void Dispose(List<(string PeftType, PluginAssembly Plugin, List<AdapterState> States)> snapshot)
    {
        foreach ((_, _, List<AdapterState> states) in snapshot)
            foreach (AdapterState s in states) s.Dispose();
    }

    /// <summary>A tuner taken out of the model during a reload: its slot, where it was in the list, and its layers by path (oldest first).</summary>
    private sealed record SuspendedSlot(TunerSlot Slot, int Index, List<(string Path, nn.Module Wrapper)> Layers);
}
