using PeftHost.Abstractions.Layers;

namespace PeftHost.Abstractions.Tuning;

/// <summary>
/// The rule for adapter names, in one place for every tuner and the host: an adapter's name becomes a
/// segment of parameter paths (<c>lora_A.&lt;adapter&gt;.weight</c>) and a key of mixed batches, so a name
/// that is empty, holds a '.', or equals a name those paths or batches already use is refused.
/// </summary>
public static class AdapterNames
{
    /// <summary>Names an adapter may not take: parameter and module names of the layers it lives in, and the mixed-batch name of the base model.</summary>
    public static IReadOnlyList<string> Reserved { get; } = ["weight", "bias", TunerLayer.BaseLayerName, AdapterRouting.BaseModel];

    /// <summary>Why <paramref name="name"/> cannot name an adapter, or null when it can.</summary>
    public static string? Problem(string? name)
    {
        if (string.IsNullOrWhiteSpace(name)) return "it is empty";
        if (name.Contains('.')) return "it contains '.', which separates the segments of parameter paths";
        if (name.IndexOfAny(['/', '\\']) >= 0) return "it contains a path separator, and a named adapter is saved in a folder of its name (save_pretrained)";
        if (name.Any(char.IsControl)) return "it contains a control character";
        if (name == AdapterRouting.BaseModel) return $"'{AdapterRouting.BaseModel}' means the base model in mixed batches (adapter_names)";
        if (Reserved.Contains(name)) return $"'{name}' is already the name of a parameter or module in every tuner layer, so its tensors could not be told apart";
        return null;
    }

    /// <summary>Throws when <paramref name="name"/> cannot name an adapter.</summary>
    /// <exception cref="ArgumentException">The name is refused; the message says why.</exception>
    public static void EnsureValid(string? name, string? paramName = "name")
    {
        if (Problem(name) is { } problem)
            throw new ArgumentException($"Adapter name '{name}' is invalid: {problem}.", paramName);
    }
}
