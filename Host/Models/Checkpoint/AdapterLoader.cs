using System.Text.Json;
using System.Text.Json.Nodes;
using PeftHost.Abstractions.State;
using PeftHost.Formats.Safetensors;
using static TorchSharp.torch;

namespace PeftHost.Models.Checkpoint;

/// <summary>
/// Reads a PEFT adapter folder saved by <c>save_pretrained</c> (adapter_config.json +
/// adapter_model.safetensors) into an <see cref="AdapterState"/>: keys lose PEFT's
/// <c>base_model.model.</c> prefix, so they are paths in the base model.
/// </summary>
public static class AdapterLoader
{
    /// <summary>PEFT's prefix on saved adapter keys.</summary>
    public const string PeftPrefix = "base_model.model.";

    /// <summary>Loads an adapter folder under the adapter name <paramref name="name"/>.</summary>
    /// <exception cref="FileNotFoundException">A file is missing (a pickle adapter_model.bin is refused by name).</exception>
    public static AdapterState Load(string folder, string name)
    {
        string configPath = Path.Combine(folder, "adapter_config.json");
        if (!File.Exists(configPath)) throw new FileNotFoundException($"No adapter_config.json in '{folder}'.", configPath);
        JsonObject config;
        try { config = JsonNode.Parse(File.ReadAllText(configPath)) as JsonObject ?? throw new InvalidDataException($"{configPath}: not a JSON object."); }
        catch (JsonException e) { throw new InvalidDataException($"{configPath}: not valid JSON ({e.Message}).", e); }

        string weights = Path.Combine(folder, "adapter_model.safetensors");
        if (!File.Exists(weights))
        {
            if (File.Exists(Path.Combine(folder, "adapter_model.bin")))
                throw new InvalidDataException($"'{folder}' holds only adapter_model.bin, a pickle file. PeftHost never loads pickle files: save the adapter with safe_serialization=True.");
            throw new FileNotFoundException($"No adapter_model.safetensors in '{folder}'.", weights);
        }
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        try
        {
            using var file = SafetensorsFile.Open(weights);
            foreach (SafetensorsTensorInfo info in file.Tensors)
            {
                string key = info.Name.StartsWith(PeftPrefix, StringComparison.Ordinal) ? info.Name[PeftPrefix.Length..] : info.Name;
                tensors[key] = TensorBridge.Read(file, info.Name);
            }
        }
        catch
        {
            foreach (Tensor t in tensors.Values) t.Dispose();
            throw;
        }
        return new AdapterState(name, config, tensors);
    }
}
