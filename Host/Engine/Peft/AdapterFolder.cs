using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using PeftHost.Abstractions.State;
using PeftHost.Formats;
using PeftHost.Formats.Safetensors;
using PeftHost.Models.Checkpoint;
using static TorchSharp.torch;

namespace PeftHost.Engine.Peft;

/// <summary>
/// PEFT's adapter folder: <c>adapter_config.json</c> and <c>adapter_model.safetensors</c> whose keys
/// carry the <c>base_model.model.</c> prefix with the adapter name removed (prompt learning saves
/// <c>prompt_embeddings</c> without a prefix), metadata <c>{"format": "pt"}</c>. Tensors of the tuner
/// model itself (<see cref="AdapterState.ModelTensors"/>, VeRA's shared projections) are under <c>base_model.</c>.
/// </summary>
public static class AdapterFolder
{
    /// <summary>PEFT's config file name.</summary>
    public const string ConfigFile = "adapter_config.json";

    /// <summary>PEFT's safetensors weights file name.</summary>
    public const string WeightsFile = "adapter_model.safetensors";

    /// <summary>The prefix PEFT's PeftModel puts before module paths.</summary>
    public const string KeyPrefix = "base_model.model.";

    /// <summary>The prefix of tensors that belong to the tuner model (PEFT's <c>PeftModel.base_model</c>) rather than to a module.</summary>
    public const string ModelKeyPrefix = "base_model.";

    /// <summary>Where PEFT's save_pretrained writes an adapter: the folder itself for "default", else a sub-folder named after it.</summary>
    public static string AdapterDirectory(string root, string adapter) => adapter == "default" ? root : Path.Combine(root, adapter);

    /// <summary>Writes one adapter (config as PEFT writes it: sorted keys, indent 2, inference_mode true).</summary>
    /// <param name="folder">The adapter's folder.</param>
    /// <param name="state">The adapter.</param>
    /// <param name="prefixKeys">Whether keys get PEFT's <c>base_model.model.</c> prefix (all but prompt learning).</param>
    /// <param name="baseModelNameOrPath">Recorded as base_model_name_or_path (replacing what the config holds) unless null.</param>
    public static void Write(string folder, AdapterState state, bool prefixKeys, string? baseModelNameOrPath = null)
    {
        Directory.CreateDirectory(folder);
        JsonObject config = (JsonObject)state.Config.DeepClone();
        config["inference_mode"] = true;
        if (baseModelNameOrPath is not null) config["base_model_name_or_path"] = baseModelNameOrPath;
        string json = Sorted(config)!.ToJsonString(new JsonSerializerOptions { WriteIndented = true, IndentSize = 2 });
        AtomicFile.WriteAllBytes(Path.Combine(folder, ConfigFile), Encoding.UTF8.GetBytes(json));
        SafetensorsWriter.Write(Path.Combine(folder, WeightsFile),
            state.Tensors.Select(t => TensorBridge.ToWrite(prefixKeys ? KeyPrefix + t.Key : t.Key, t.Value))
                .Concat(state.ModelTensors.Select(t => TensorBridge.ToWrite(ModelKeyPrefix + t.Key, t.Value))).ToList(),
            new Dictionary<string, string> { ["format"] = "pt" });
    }

    /// <summary>
    /// Reads an adapter folder as plain data. Keys lose the <c>base_model.model.</c> prefix; other keys under
    /// <c>base_model.</c> are the tuner model's own (<see cref="AdapterState.ModelTensors"/>) and lose that prefix.
    /// </summary>
    /// <exception cref="FileNotFoundException">No config, or no safetensors weights (a pickle-only folder is refused by name).</exception>
    public static AdapterState Read(string folder, string adapterName)
    {
        string configPath = Path.Combine(folder, ConfigFile);
        if (!File.Exists(configPath))
            throw new FileNotFoundException($"No {ConfigFile} in {Path.GetFullPath(folder)}: not a PEFT adapter folder.", configPath);
        JsonObject config;
        try
        {
            // Duplicate keys are refused while parsing (JsonObject would throw ArgumentException when first read).
            config = JsonNode.Parse(File.ReadAllText(configPath), documentOptions: new JsonDocumentOptions { AllowDuplicateProperties = false }) as JsonObject
                ?? throw new InvalidDataException($"{configPath}: the config is not a JSON object.");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{configPath}: invalid JSON: {e.Message}", e);
        }
        if (config["peft_type"] is null) throw new InvalidDataException($"{configPath}: no 'peft_type' field.");

        string weights = Path.Combine(folder, WeightsFile);
        if (!File.Exists(weights))
        {
            if (File.Exists(Path.Combine(folder, "adapter_model.bin")))
                throw new FileNotFoundException($"{folder} has only adapter_model.bin, a pickle file, which PeftHost never loads (it can run code). Convert it to {WeightsFile} with PEFT (save_pretrained(..., safe_serialization=True)).", weights);
            throw new FileNotFoundException($"No {WeightsFile} in {Path.GetFullPath(folder)}.", weights);
        }
        using SafetensorsFile file = SafetensorsFile.Open(weights);
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        var modelTensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (SafetensorsTensorInfo info in file.Tensors)
        {
            string name = info.Name;
            if (name.StartsWith(KeyPrefix, StringComparison.Ordinal)) tensors[name[KeyPrefix.Length..]] = TensorBridge.Read(file, name);
            else if (name.StartsWith(ModelKeyPrefix, StringComparison.Ordinal)) modelTensors[name[ModelKeyPrefix.Length..]] = TensorBridge.Read(file, name);
            else tensors[name] = TensorBridge.Read(file, name);
        }
        return new AdapterState(adapterName, config, tensors) { ModelTensors = modelTensors };
    }

    // PEFT writes its config with json.dumps(sort_keys=True).
    private static JsonNode? Sorted(JsonNode? node) => node switch
    {
        JsonObject o => new JsonObject(o.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => KeyValuePair.Create(p.Key, Sorted(p.Value)))),
        JsonArray a => new JsonArray([.. a.Select(Sorted)]),
        _ => node?.DeepClone(),
    };
}
