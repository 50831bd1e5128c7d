using System.Text.Json.Nodes;
using PeftHost.Abstractions.State;
using PeftHost.Formats;
using PeftHost.Formats.Safetensors;
using PeftHost.Models.Checkpoint;
using static TorchSharp.torch;

namespace PeftHost.Training.Checkpoints;

/// <summary>
/// A method's training-only state in a checkpoint (<see cref="TrainingState"/>, e.g. AdaLoRA's rank
/// allocator): its tensors in <c>tuner_state.safetensors</c>, its JSON in <c>tuner_state.json</c>. Absent when
/// the method keeps none.
/// </summary>
public static class TunerTrainingState
{
    /// <summary>The tensors file.</summary>
    public const string TensorsFile = "tuner_state.safetensors";

    /// <summary>The JSON file.</summary>
    public const string JsonFile = "tuner_state.json";

    /// <summary>Writes the state into a checkpoint folder.</summary>
    public static void Save(string folder, TrainingState state)
    {
        SafetensorsWriter.Write(Path.Combine(folder, TensorsFile),
            [.. state.Tensors.OrderBy(t => t.Key, StringComparer.Ordinal).Select(t => TensorBridge.ToWrite(t.Key, t.Value))],
            new Dictionary<string, string> { ["format"] = "pt" });
        AtomicFile.WriteAllText(Path.Combine(folder, JsonFile), state.Json.ToJsonString(CheckpointJson.Options));
    }

    /// <summary>The state a checkpoint holds, or null when it holds none.</summary>
    /// <exception cref="InvalidDataException">Only one of the two files is there, or one is malformed.</exception>
    public static TrainingState? Read(string folder)
    {
        string tensorsPath = Path.Combine(folder, TensorsFile), jsonPath = Path.Combine(folder, JsonFile);
        bool hasTensors = File.Exists(tensorsPath), hasJson = File.Exists(jsonPath);
        if (!hasTensors && !hasJson) return null;
        if (hasTensors != hasJson)
            throw new InvalidDataException($"{folder}: the checkpoint has {(hasTensors ? TensorsFile : JsonFile)} without {(hasTensors ? JsonFile : TensorsFile)}; it is incomplete.");
        JsonObject json = CheckpointJson.Read(jsonPath);
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        using SafetensorsFile file = SafetensorsFile.Open(tensorsPath);
        foreach (SafetensorsTensorInfo info in file.Tensors) tensors[info.Name] = TensorBridge.Read(file, info.Name);
        return new TrainingState(json, tensors);
    }
}
