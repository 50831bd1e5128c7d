using PeftHost.Formats;
using PeftHost.Formats.Safetensors;
using PeftHost.Models.Bert;
using PeftHost.Models.Checkpoint;
using PeftHost.Models.Config;
using PeftHost.Models.Gpt2;
using PeftHost.Models.Llama;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Models;

/// <summary>Builds architectures from configs and loads Hugging Face model folders (config.json + safetensors).</summary>
public static class ModelFactory
{
    /// <summary>The module for a config's architecture, with random weights.</summary>
    /// <exception cref="InvalidDataException">The config is out of range (<see cref="ModelConfigValidator"/>): nothing reaches libtorch.</exception>
    public static nn.Module Create(ModelConfig config) => Validated(config) switch
    {
        LlamaConfig l => new LlamaForCausalLM(l),
        BertConfig { Architecture: "BertModel" } b => new BertModel(b),
        BertConfig b => new BertForSequenceClassification(b),
        Gpt2Config g => new Gpt2LMHeadModel(g),
        _ => throw new NotSupportedException($"No architecture for {config.GetType().Name}."),
    };

    private static ModelConfig Validated(ModelConfig config)
    {
        ModelConfigValidator.Validate(config, $"{config.ModelType} config");
        return config;
    }

    /// <summary>The base model's prefix in transformers' state dict keys ("model", "bert", "transformer").</summary>
    public static string BasePrefix(ModelConfig config) => config switch
    {
        LlamaConfig => "model",
        BertConfig { Architecture: "BertModel" } => "bert",
        BertConfig => "bert",
        _ => "transformer",
    };

    /// <summary>
    /// Loads a model folder: config.json and model.safetensors (or a sharded index), in
    /// <paramref name="dtype"/> on <paramref name="device"/>, in eval mode.
    /// </summary>
    public static (ModelConfig Config, nn.Module Model) Load(string folder, ScalarType dtype = ScalarType.Float32, Device? device = null)
    {
        ModelConfig config = ModelConfigReader.Read(folder);
        using var checkpoint = SafetensorsCheckpoint.Open(folder);
        nn.Module model = Create(config);
        try
        {
            if (dtype != ScalarType.Float32) model.to(dtype);
            CheckpointLoader.Load(model, checkpoint, BasePrefix(config));
            if (device is not null && device.type != DeviceType.CPU) model.to(device);
            model.eval();
            return (config, model);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Writes a model folder as transformers' <c>save_pretrained</c> does: config.json and
    /// model.safetensors (a tied weight is saved once, under the embedding's name).
    /// </summary>
    public static void Save(nn.Module model, ModelConfig config, string folder)
    {
        Directory.CreateDirectory(folder);
        IReadOnlyDictionary<string, string> tied = (model as ITiedWeights)?.TiedParameters ?? new Dictionary<string, string>();
        var tensors = new List<SafetensorsWriteTensor>();
        foreach ((string name, var p) in model.named_parameters())
            if (!tied.ContainsKey(name)) tensors.Add(TensorBridge.ToWrite(name, p));
        SafetensorsWriter.Write(Path.Combine(folder, SafetensorsCheckpoint.SingleFileName), tensors, new Dictionary<string, string> { ["format"] = "pt" });
        AtomicFile.WriteAllBytes(Path.Combine(folder, "config.json"), System.Text.Encoding.UTF8.GetBytes(config.Raw.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true })));
    }
}
