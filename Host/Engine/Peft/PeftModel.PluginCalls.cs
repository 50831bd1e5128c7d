using PeftHost.Abstractions.State;
using PeftHost.Engine.Plugins;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Engine.Peft;

// Every read of a tuner model's state goes through here, so that a plugin that throws from a getter, hands back
// malformed state or produces NaN is a PluginFaultException naming it and the operation, never a raw exception.
public sealed partial class PeftModel
{
    // The dtypes an adapter file (safetensors) holds.
    private static readonly HashSet<ScalarType> StorableDTypes =
    [
        ScalarType.Float32, ScalarType.Float16, ScalarType.BFloat16, ScalarType.Float64,
        ScalarType.Int64, ScalarType.Int32, ScalarType.Int16, ScalarType.Int8, ScalarType.Byte, ScalarType.Bool,
    ];

    // The host keeps its own list of each tuner's adapters (in the order added): it never depends on a plugin's getters for its bookkeeping.
    private List<string> AdaptersOfSlot(TunerSlot slot) => [.. _adapterOrder.Where(a => _adapterTypes[a] == slot.PeftType)];

    private IReadOnlyList<string> MergedNow() => [.. _slots.SelectMany(s => Guard(s, "list merged adapters", () => s.Model.MergedAdapters ?? []))];

    /// <summary>An adapter exported by its plugin, checked to be data the host can save and hand to another version.</summary>
    private static AdapterState Exported(TunerSlot slot, string name)
    {
        // A plugin may hand back nulls its signature does not allow.
        AdapterState? state = Guard(slot, "export", () => slot.Model.ExportAdapter(name));
        IEnumerable<KeyValuePair<string, Tensor?>>? tensors = state?.Tensors?.Select(t => KeyValuePair.Create(t.Key, (Tensor?)t.Value));
        string? problem = state is null ? "it returned no state"
            : state.Name != name ? $"asked for adapter '{name}', it returned '{state.Name}'"
            : state.Config is null ? "the state has no config"
            : tensors is null ? "the state has no tensors"
            : null;
        if (problem is null && tensors is not null)
        {
            foreach ((string key, Tensor? t) in tensors)
            {
                if (t is null || t.IsInvalid) problem = $"tensor '{key}' is {(t is null ? "null" : "disposed")}";
                else if (!StorableDTypes.Contains(t.dtype)) problem = $"tensor '{key}' is {t.dtype}, which no adapter file holds";
                if (problem is not null) break;
            }
        }
        return problem is null ? state!
            : throw new PluginFaultException(slot.Plugin.Manifest.Id, slot.Plugin.Manifest.Version, "export",
                new InvalidDataException($"The export of adapter '{name}' is malformed: {problem}."));
    }

    // NaN or infinity out of a forward with adapters active is attributed to the plugins serving them (the base alone is the user's).
    private void CheckFinite(Tensor output)
    {
        if (!output.is_floating_point() && !output.is_complex()) return;
        List<TunerSlot> serving = ServingSlots();
        if (serving.Count == 0) return;
        bool finite;
        using (no_grad())
        using (Tensor each = output.isfinite())
        using (Tensor all = each.all())
            finite = all.item<bool>();
        if (finite) return;
        TunerSlot first = serving[0];
        string adapters = string.Join(", ", serving.Select(s => $"{string.Join(", ", _active.Where(a => _adapterTypes[a] == s.PeftType))} ({s.Plugin.Label})"));
        throw new PluginFaultException(first.Plugin.Manifest.Id, first.Plugin.Manifest.Version, "forward",
            new InvalidDataException($"The output [{string.Join(", ", output.shape)}] holds NaN or infinity with adapters {adapters} active."));
    }

    // The slots whose adapters take part in a forward now.
    private List<TunerSlot> ServingSlots() => !_enabled ? []
        : [.. _slots.Where(s => _active.Any(a => _adapterTypes.TryGetValue(a, out string? t) && t == s.PeftType))];
}
