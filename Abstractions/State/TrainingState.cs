using System.Text.Json.Nodes;
using static TorchSharp.torch;

namespace PeftHost.Abstractions.State;

/// <summary>
/// What a tuner keeps only while an adapter trains (AdaLoRA's sensitivity averages, its rank pattern, the
/// untruncated triplets), as plain data: the host writes it into each checkpoint beside the adapter
/// (tensors as safetensors, the rest as JSON; no pickle) and hands it back on resume, so that a resumed
/// run continues bitwise. No plugin type appears here.
/// </summary>
public sealed class TrainingState : IDisposable
{
    /// <summary>A state of <paramref name="json"/> and <paramref name="tensors"/>, which it then owns.</summary>
    /// <param name="json">Values that are not tensors (the tuner's own layout; the host only stores it).</param>
    /// <param name="tensors">Tensors by the tuner's own names (detached CPU copies).</param>
    public TrainingState(JsonObject json, IReadOnlyDictionary<string, Tensor> tensors)
    {
        ArgumentNullException.ThrowIfNull(json);
        ArgumentNullException.ThrowIfNull(tensors);
        Json = json;
        Tensors = tensors;
    }

    /// <summary>Values that are not tensors, in the tuner's own layout.</summary>
    public JsonObject Json { get; }

    /// <summary>Tensors by the tuner's own names, owned by the state.</summary>
    public IReadOnlyDictionary<string, Tensor> Tensors { get; }

    /// <summary>Disposes the tensors.</summary>
    public void Dispose()
    {
        foreach (Tensor t in Tensors.Values) t.Dispose();
    }
}
