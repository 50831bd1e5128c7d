using System.Text.RegularExpressions;
using PeftHost.Formats.Safetensors;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftHost.Models.Checkpoint;

/// <summary>
/// Copies a checkpoint's tensors into a module's parameters by name, strictly: a missing tensor,
/// an unexpected one or another shape is an error that names the tensor (and both shapes). A
/// parameter shared by two names (tied embeddings) needs only one of them in the checkpoint.
/// </summary>
public static partial class CheckpointLoader
{
    // Buffers transformers saved in some versions and recomputes at load: never parameters here.
    [GeneratedRegex(@"(rotary_emb\.inv_freq|\.attn\.bias|\.attn\.masked_bias|embeddings\.position_ids|embeddings\.token_type_ids)$")]
    private static partial Regex IgnorableKey();

    /// <summary>
    /// Loads <paramref name="checkpoint"/> into <paramref name="model"/>. <paramref name="basePrefix"/>
    /// (e.g. "model", "bert", "transformer") lets a checkpoint saved with or without the base model's
    /// prefix load into the other form, as transformers does. Keys in <paramref name="handledKeys"/>
    /// were read by the caller (a quantized layer's packed weight and its scales) and are passed over.
    /// </summary>
    /// <exception cref="InvalidDataException">Tensors are missing, unexpected or of another shape.</exception>
    public static void Load(nn.Module model, SafetensorsCheckpoint checkpoint, string? basePrefix = null, IReadOnlySet<string>? handledKeys = null)
    {
        var parameters = new Dictionary<string, Parameter>(StringComparer.Ordinal);
        foreach ((string name, Parameter p) in model.named_parameters()) parameters[name] = p;

        var assignments = new List<(string Key, string Name, Parameter Target)>();
        var unexpected = new List<string>();
        var problems = new List<string>();
        foreach (string key in checkpoint.Names)
        {
            if (handledKeys?.Contains(key) == true) continue;
            string? name = Resolve(key, parameters, basePrefix);
            if (name is null)
            {
                if (!IgnorableKey().IsMatch(key)) unexpected.Add(key);
                continue;
            }
            SafetensorsTensorInfo info = checkpoint.Info(key);
            Parameter target = parameters[name];
            if (!info.Shape.SequenceEqual(target.shape))
                problems.Add($"tensor '{key}' has shape {info.ShapeText} in the checkpoint but the model expects [{string.Join(", ", target.shape)}]");
            else if (info.DType is not (SafetensorsDType.F32 or SafetensorsDType.F16 or SafetensorsDType.BF16 or SafetensorsDType.F64))
                problems.Add($"tensor '{key}' is {info.DType.Name()} in the checkpoint but the model's parameter is floating point");
            else assignments.Add((key, name, target));
        }

        // A tied name is satisfied by the name it shares its tensor with.
        IReadOnlyDictionary<string, string> tied = (model as ITiedWeights)?.TiedParameters ?? new Dictionary<string, string>();
        var loaded = new HashSet<string>(assignments.Select(a => a.Name), StringComparer.Ordinal);
        var missing = parameters.Keys.Where(n => !loaded.Contains(n) && !(tied.TryGetValue(n, out string? shared) && loaded.Contains(shared))).ToList();
        foreach (string m in missing) problems.Add($"tensor '{m}' is missing from the checkpoint");
        foreach (string u in unexpected) problems.Add($"tensor '{u}' is not a parameter of the model");
        if (problems.Count > 0)
            throw new InvalidDataException($"Checkpoint '{checkpoint.Source}' does not fit {model.GetType().Name}: {string.Join("; ", problems.Take(20))}" +
                (problems.Count > 20 ? $"; and {problems.Count - 20} more" : "") + ".");

        using (no_grad())
        {
            foreach ((string key, _, Parameter target) in assignments)
            {
                using Tensor source = TensorBridge.Read(checkpoint.FileOf(key), key);
                target.copy_(source);
            }
        }
    }

    private static string? Resolve(string key, Dictionary<string, Parameter> parameters, string? basePrefix)
    {
        if (parameters.ContainsKey(key)) return key;
        if (basePrefix is null) return null;
        string withPrefix = basePrefix + "." + key;
        if (parameters.ContainsKey(withPrefix)) return withPrefix;
        if (key.StartsWith(basePrefix + ".", StringComparison.Ordinal) && parameters.ContainsKey(key[(basePrefix.Length + 1)..])) return key[(basePrefix.Length + 1)..];
        return null;
    }
}
