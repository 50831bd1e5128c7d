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
        var snapshot = new List<(string PeftType, List<AdapterState> States)>();
        var suspended = new List<SuspendedSlot>();
        List<TunerSlot> oldSlots = _slots.Where(s => ReferenceEquals(s.Plugin, oldPlugin)).ToList();
        // Merged adapters live in the base weights, which the layers' removal leaves as they are: they are taken out
        // first (the new version would add them a second time) and merged again by whichever version serves.
        var merged = new List<(string PeftType, List<string> Names)>();
        void MergeOldAgain()
        {
            foreach ((string peftType, List<string> names) in merged)
                if (_slots.FirstOrDefault(x => x.PeftType == peftType && ReferenceEquals(x.Plugin, oldPlugin)) is { } slot)
                    TryPlugin(slot, "merge", () => slot.Model.Merge(names, false));
        }
        try
        {
            foreach (TunerSlot slot in oldSlots)
            {
                List<string> names = [.. Guard(slot, "list merged adapters", () => slot.Model.MergedAdapters ?? [])];
                if (names.Count == 0) continue;
                Guard(slot, "unmerge", slot.Model.Unmerge);
                merged.Add((slot.PeftType, names));
            }
            foreach (TunerSlot slot in oldSlots)
            {
                var states = new List<AdapterState>();
                snapshot.Add((slot.PeftType, states));
                foreach (string a in AdaptersOfSlot(slot)) states.Add(Exported(slot, a));
            }
            // Newest first, as wrappers nest in the order the tuners were attached.
            foreach (TunerSlot slot in Enumerable.Reverse(oldSlots)) suspended.Insert(0, Suspend(slot));
            try
            {
                Restore(snapshot, newPlugin);
                foreach ((string peftType, List<string> names) in merged)
                {
                    TunerSlot slot = _slots.First(x => x.PeftType == peftType && ReferenceEquals(x.Plugin, newPlugin));
                    Guard(slot, "merge", () => slot.Model.Merge(names, false));
                }
            }
            catch
            {
                DropSlotsOf(newPlugin);
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
                    Retire(suspended, newPlugin);
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
                    DropSlotsOf(newPlugin);
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

    private void Restore(List<(string PeftType, List<AdapterState> States)> snapshot, PluginAssembly plugin)
    {
        foreach ((string peftType, List<AdapterState> states) in snapshot)
        {
            if (!plugin.Tuners.ContainsKey(peftType))
                throw new InvalidOperationException($"Plugin {plugin.Label} does not serve {peftType}, which adapters {string.Join(", ", states.Select(s => s.Name))} use.");
            TunerSlot slot = Attach(peftType, plugin);
            foreach (AdapterState state in states) Guard(slot, "apply", () => slot.Model.ImportAdapter(state));
            // Buffers padded for hotswap are exported at the adapters' own ranks: the new version pads them again.
            if (_hotswapRank is int rank && slot.Model is IHotswapModel h) Guard(slot, "prepare hotswap", () => h.PrepareForHotswap(rank));
        }
        ApplyActive();
        foreach (TunerSlot s in _slots) Guard(s, "enable", () => s.Model.Enabled = _enabled);
    }

    private void DropSlotsOf(PluginAssembly plugin)
    {
        foreach (TunerSlot slot in Enumerable.Reverse(_slots.Where(s => ReferenceEquals(s.Plugin, plugin)).ToList())) DropSlot(slot);
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
    private void Retire(List<SuspendedSlot> old, PluginAssembly newPlugin)
    {
        List<TunerSlot> replacing = _slots.Where(s => ReferenceEquals(s.Plugin, newPlugin)).ToList();
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

    private static void Dispose(List<(string PeftType, List<AdapterState> States)> snapshot)
    {
        foreach ((_, List<AdapterState> states) in snapshot)
            foreach (AdapterState s in states) s.Dispose();
    }

    /// <summary>A tuner taken out of the model during a reload: its slot, where it was in the list, and its layers by path (oldest first).</summary>
    private sealed record SuspendedSlot(TunerSlot Slot, int Index, List<(string Path, nn.Module Wrapper)> Layers);
}
