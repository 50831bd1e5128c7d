using PeftHost.Abstractions.State;
using PeftHost.Abstractions.Tuning;
using PeftHost.Engine.Plugins;

namespace PeftHost.Engine.Peft;

// An adapter as low-rank pairs, for runtimes that apply nothing else unmerged (GGUF-LoRA): the method
// writes them (ILowRankExportModel); the host adds only what is its own, modules_to_save.
public sealed partial class PeftModel
{
    /// <summary>
    /// Adapter <paramref name="adapter"/> as low-rank pairs per adapted module (ΔW = scale · B·A, in the
    /// module's [out, in] orientation), written by its method, or the reason it cannot be expressed so:
    /// the method's own (a DoRA magnitude, trained biases, ...) or the host's, modules_to_save copies,
    /// which are whole trained modules.
    /// </summary>
    /// <returns>A new export the caller owns and disposes.</returns>
    /// <exception cref="KeyNotFoundException">No adapter of that name.</exception>
    /// <exception cref="NotSupportedException">The adapter's method cannot write low-rank pairs at all (its tuner model has no <see cref="ILowRankExportModel"/>); the message names its peft_type.</exception>
    public LowRankExport ExportLowRank(string adapter) => Read(() =>
    {
        TunerSlot slot = SlotOf(adapter);
        if (slot.Model is not ILowRankExportModel lowRank)
            throw new NotSupportedException(
                $"adapter '{adapter}': peft_type {slot.PeftType} is not LoRA-expressible: its plugin ({slot.Plugin.Label}) cannot write an adapter as low-rank pairs (scale · B·A per module; no ILowRankExportModel).");
        IReadOnlyList<string> copies = _modulesToSave.CopiedPaths(adapter);
        if (copies.Count > 0)
            return LowRankExport.Refused(adapter,
                $"adapter '{adapter}': modules_to_save ({string.Join(", ", copies)}) are full trained copies of base weights, which low-rank pairs cannot hold; merge the adapter into the base instead.");
        LowRankExport export = Guard(slot, "export low-rank", () => lowRank.ExportLowRank(adapter));
        if (export.Adapter != adapter)
        {
            export.Dispose();
            throw new PluginFaultException(slot.Plugin.Manifest.Id, slot.Plugin.Manifest.Version, "export low-rank",
                new InvalidOperationException($"asked for adapter '{adapter}', the plugin exported '{export.Adapter}'."));
        }
        return export;
    });

    /// <summary>Whether the method of <paramref name="adapter"/> can merge it into the base weights (false for prompt learning).</summary>
    /// <exception cref="KeyNotFoundException">No adapter of that name.</exception>
    public bool CanMerge(string adapter) => Read(() =>
    {
        TunerSlot slot = SlotOf(adapter);
        return Guard(slot, "can merge", () => slot.Model.CanMerge);
    });
}
