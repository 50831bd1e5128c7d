using static TorchSharp.torch;

namespace PeftHost.Abstractions.State;

/// <summary>
/// Copies an adapter's saved tensors into the live ones, all or nothing: every shape is checked
/// before the first copy, and an error names the adapter, the tensor and both shapes.
/// </summary>
public static class AdapterTensorCopy
{
    /// <summary>Copies <paramref name="source"/>[key] into each <paramref name="targets"/>[key] (every key must be present in the source).</summary>
    /// <exception cref="InvalidDataException">A tensor is missing, has another shape, or holds integers or booleans where the model holds floating-point values; nothing was copied.</exception>
    public static void CopyChecked(string adapter, IEnumerable<KeyValuePair<string, Tensor>> targets, IReadOnlyDictionary<string, Tensor> source)
    {
        var pairs = targets.ToList();
        var missing = pairs.Select(p => p.Key).Where(k => !source.ContainsKey(k)).ToList();
        if (missing.Count > 0)
            throw new InvalidDataException($"Adapter '{adapter}': tensors do not match the model. " +
                $"Missing: {string.Join(", ", missing.Take(8))}{(missing.Count > 8 ? $" (+{missing.Count - 8} more)" : "")}.");
        foreach ((string key, Tensor target) in pairs)
        {
            Tensor s = source[key];
            if (!s.shape.SequenceEqual(target.shape))
                throw new InvalidDataException($"Adapter '{adapter}': tensor '{key}' has shape [{string.Join(", ", s.shape)}], the model expects [{string.Join(", ", target.shape)}].");
            // A float file converts (float16 into float32 weights); integers or booleans for weights are not weights.
            if (target.is_floating_point() && !s.is_floating_point())
                throw new InvalidDataException($"Adapter '{adapter}': tensor '{key}' is {s.dtype}; the model expects floating-point values ({target.dtype}).");
        }
        using (no_grad())
        {
            foreach ((string key, Tensor target) in pairs) target.copy_(source[key]);
        }
    }
}
