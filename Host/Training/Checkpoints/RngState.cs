using PeftHost.Formats.Safetensors;
using PeftHost.Models.Checkpoint;
using static TorchSharp.torch;

namespace PeftHost.Training.Checkpoints;

/// <summary>libtorch's default CPU generator state (what dropout draws from), saved as a uint8 safetensors tensor.</summary>
public static class RngState
{
    /// <summary>The file name in a checkpoint.</summary>
    public const string FileName = "rng_state.safetensors";

    /// <summary>Writes the current state.</summary>
    public static void Save(string folder)
    {
        using Tensor state = get_rng_state();
        SafetensorsWriter.Write(Path.Combine(folder, FileName), [TensorBridge.ToWrite("cpu", state)], new Dictionary<string, string> { ["format"] = "pt" });
    }

    /// <summary>Restores a saved state.</summary>
    public static void Load(string folder)
    {
        string path = Path.Combine(folder, FileName);
        if (!File.Exists(path)) throw new FileNotFoundException($"{path} is missing: the checkpoint is incomplete.", path);
        using SafetensorsFile file = SafetensorsFile.Open(path);
        using Tensor state = TensorBridge.Read(file, "cpu");
        set_rng_state(state);
    }
}
