namespace PeftHost.Abstractions.Tuning;

/// <summary>A tuner model that can combine adapters into a new one (PEFT's LoRA <c>add_weighted_adapter</c>).</summary>
public interface IWeightedAdapterModel : ITunerModel
{
    /// <summary>The combination types supported (e.g. "linear", "svd", "cat").</summary>
    IReadOnlyList<string> CombinationTypes { get; }

    /// <summary>
    /// Adds adapter <paramref name="newName"/> = the weighted combination of <paramref name="adapters"/>.
    /// </summary>
    /// <param name="adapters">The adapters to combine.</param>
    /// <param name="weights">One weight per adapter.</param>
    /// <param name="newName">The new adapter's name.</param>
    /// <param name="combinationType">One of <see cref="CombinationTypes"/>.</param>
    /// <param name="svdRank">The rank for "svd" (default: the largest rank of the inputs).</param>
    void AddWeightedAdapter(IReadOnlyList<string> adapters, IReadOnlyList<double> weights, string newName, string combinationType, int? svdRank = null);
}
