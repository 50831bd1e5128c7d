namespace PeftHost.Abstractions.State;

/// <summary>
/// An adapter written as low-rank factors (what <see cref="Tuning.ILowRankExportModel.ExportLowRank"/>
/// returns): either one <see cref="LowRankFactors"/> per adapted module, or the reason the adapter
/// cannot be expressed so. Owns the factors. Added in contract 1.1.
/// </summary>
public sealed class LowRankExport : IDisposable
{
    private LowRankExport(string adapter, IReadOnlyList<LowRankFactors> modules, double? nominalAlpha, string? refusal)
    {
        Adapter = adapter;
        Modules = modules;
        NominalAlpha = nominalAlpha;
        Refusal = refusal;
    }

    /// <summary>The adapter expressed as <paramref name="modules"/>; the export takes ownership of them.</summary>
    /// <param name="adapter">The adapter's name.</param>
    /// <param name="modules">One pair per adapted module (none when the adapter changes no weight, e.g. every rank pruned).</param>
    /// <param name="nominalAlpha">
    /// The adapter's own alpha (PEFT's <c>lora_alpha</c>), for formats that store one alpha per file and
    /// scale each pair by alpha / r (GGUF-LoRA's <c>adapter.lora.alpha</c>): they write it and fold each
    /// module's <see cref="LowRankFactors.Scale"/> / (alpha / r) into B. Null when the method has none.
    /// </param>
    /// <exception cref="ArgumentException">Two pairs have the same module path, or the alpha is not finite and positive.</exception>
    public LowRankExport(string adapter, IReadOnlyList<LowRankFactors> modules, double? nominalAlpha = null)
        : this(adapter, Checked(adapter, modules, nominalAlpha), nominalAlpha, null) { }

    /// <summary>The adapter cannot be expressed as low-rank factors, because of <paramref name="reason"/>.</summary>
    /// <param name="adapter">The adapter's name.</param>
    /// <param name="reason">Why, in a sentence a user can act on (what the adapter has that the pairs lack).</param>
    public static LowRankExport Refused(string adapter, string reason)
    {
        ArgumentException.ThrowIfNullOrEmpty(adapter);
        ArgumentException.ThrowIfNullOrEmpty(reason);
        return new LowRankExport(adapter, [], null, reason);
    }

    /// <summary>The adapter's name.</summary>
    public string Adapter { get; }

    /// <summary>The pairs, one per adapted module (empty when refused).</summary>
    public IReadOnlyList<LowRankFactors> Modules { get; }

    /// <summary>The adapter's own alpha for one-alpha-per-file formats, or null.</summary>
    public double? NominalAlpha { get; }

    /// <summary>Why the adapter cannot be expressed as low-rank factors, or null when it is.</summary>
    public string? Refusal { get; }

    /// <summary>Whether the adapter is expressed (<see cref="Refusal"/> is null).</summary>
    public bool IsExpressed => Refusal is null;

    /// <summary>Disposes every pair.</summary>
    public void Dispose()
    {
        foreach (LowRankFactors m in Modules) m.Dispose();
    }

    private static IReadOnlyList<LowRankFactors> Checked(string adapter, IReadOnlyList<LowRankFactors> modules, double? nominalAlpha)
    {
        ArgumentException.ThrowIfNullOrEmpty(adapter);
        ArgumentNullException.ThrowIfNull(modules);
        if (nominalAlpha is double alpha && !(double.IsFinite(alpha) && alpha > 0))
            throw new ArgumentException($"Adapter '{adapter}': the nominal alpha must be finite and positive, got {alpha}.", nameof(nominalAlpha));
        string? twice = modules.GroupBy(m => m.ModulePath, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1)?.Key;
        if (twice is not null) throw new ArgumentException($"Adapter '{adapter}': module '{twice}' has two low-rank pairs.", nameof(modules));
        return [.. modules];
    }
}
