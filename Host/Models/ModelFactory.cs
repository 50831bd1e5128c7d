using PeftHost.Formats;
using PeftHost.Abstractions.Layers;
using PeftHost.Formats.BitsAndBytes;
using PeftHost.Formats.Safetensors;
using PeftHost.Models.Bert;
using PeftHost.Models.Checkpoint;
using PeftHost.Models.Config;
using PeftHost.Models.Gpt2;
using PeftHost.Models.Llama;
using PeftHost.Models.Quantization;
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
    /// <paramref name="dtype"/> on <paramref name="device"/>, in eval mode. A folder saved with
    /// bitsandbytes (config.json's quantization_config) loads with its quantized layers.
    /// </summary>
    public static (ModelConfig Config, nn.Module Model) Load(string folder, ScalarType dtype = ScalarType.Float32, Device? device = null) =>
        Load(folder, dtype, device, quantization: null);

    /// <summary>
    /// As <see cref="Load(string, ScalarType, Device?)"/>, quantizing with <paramref name="quantization"/>
    /// (transformers' <c>from_pretrained(quantization_config=...)</c>): the Linear layers it selects become
    /// <see cref="Linear4bit"/> or <see cref="Linear8bit"/>, quantized from the checkpoint's weights in
    /// <paramref name="dtype"/>. A folder already saved quantized loads as stored; a requested config must then
    /// ask for the same quantization (its compute dtype is used).
    /// </summary>
    /// <exception cref="InvalidDataException">The checkpoint does not fit the model or the quantization; the message names the tensor or field.</exception>
    /// <exception cref="ArgumentException"><paramref name="dtype"/> is not a floating-point type.</exception>
    public static (ModelConfig Config, nn.Module Model) Load(string folder, ScalarType dtype, Device? device, BitsAndBytesConfig? quantization)
    {
        if (dtype is not (ScalarType.Float32 or ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Float64))
            throw new ArgumentException($"A model loads in float32, float16, bfloat16 or float64, not {dtype}.", nameof(dtype));
        ModelConfig config = ModelConfigReader.Read(folder);
        string configPath = Path.Combine(folder, "config.json");
        BitsAndBytesConfig? stored = BitsAndBytesCheckpoint.ReadConfig(config, configPath);
        using var checkpoint = SafetensorsCheckpoint.Open(folder);
        nn.Module model;
        if (stored is null && quantization is null)
        {
            model = Create(config);
            try
            {
                if (dtype != ScalarType.Float32) model.to(dtype);
                CheckpointLoader.Load(model, checkpoint, BasePrefix(config));
            }
            catch
            {
                model.Dispose();
                throw;
            }
        }
        else
        {
            quantization?.Validate("the requested quantization");
            BitsAndBytesConfig use = stored is null ? quantization! : StoredWithCompute(stored, quantization, configPath);
            model = BitsAndBytesCheckpoint.Load(config, checkpoint, use, preQuantized: stored is not null, dtype);
        }
        try
        {
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
    /// Loads a model folder in full precision whatever its storage: a folder saved with bitsandbytes has each
    /// quantized weight decoded into its Linear (transformers' <c>dequantize()</c>; the quantization's rounding
    /// stays in the values); any other folder loads as <see cref="Load(string, ScalarType, Device?)"/> loads it, or,
    /// with <paramref name="quantizeFirst"/>, quantized that way as it loads and decoded again: the base a QLoRA
    /// adapter was trained on, in float layers (what a merge or an export of that adapter must start from).
    /// </summary>
    /// <exception cref="InvalidDataException">The checkpoint does not fit the model or its quantization; the message names the tensor or field.</exception>
    public static (ModelConfig Config, nn.Module Model) LoadDequantized(string folder, ScalarType dtype = ScalarType.Float32, Device? device = null,
        BitsAndBytesConfig? quantizeFirst = null)
    {
        ModelConfig config = ModelConfigReader.Read(folder);
        BitsAndBytesConfig? stored = BitsAndBytesCheckpoint.ReadConfig(config, Path.Combine(folder, "config.json"));
        if (stored is null && quantizeFirst is not null) return QuantizedThenDecoded(folder, dtype, device, quantizeFirst);
        if (stored is null) return Load(folder, dtype, device);
        nn.Module model;
        using (var checkpoint = SafetensorsCheckpoint.Open(folder)) model = BitsAndBytesCheckpoint.LoadDequantized(config, checkpoint, stored, dtype);
        try
        {
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

    // The float model with each linear weight replaced by its quantize-then-decode round trip (the layers
    // quantization would skip, such as the output head, keep their float weights).
    private static (ModelConfig, nn.Module) QuantizedThenDecoded(string folder, ScalarType dtype, Device? device, BitsAndBytesConfig quantization)
    {
        (ModelConfig config, nn.Module model) = Load(folder, dtype, device);
        try
        {
            (_, nn.Module quantized) = Load(folder, dtype, device, quantization);
            using (quantized)
            {
                var floats = model.named_modules().ToDictionary(m => m.name, m => m.module, StringComparer.Ordinal);
                using var _ = no_grad();
                foreach ((string name, nn.Module module) in quantized.named_modules())
                {
                    if (module is not QuantizedLinear q) continue;
                    if (!floats.TryGetValue(name, out nn.Module? target) || target is not TorchSharp.Modules.Linear linear)
                        throw new InvalidOperationException($"{folder}: quantized module '{name}' has no float Linear counterpart.");
                    using Tensor decoded = q.Dequantize(dtype);
                    linear.weight!.copy_(decoded);
                }
            }
            return (config, model);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    private static BitsAndBytesConfig StoredWithCompute(BitsAndBytesConfig stored, BitsAndBytesConfig? requested, string configPath)
    {
        if (requested is null) return stored;
        if (requested.LoadIn4Bit != stored.LoadIn4Bit || (stored.LoadIn4Bit && (requested.QuantType != stored.QuantType || requested.UseDoubleQuant != stored.UseDoubleQuant)))
            throw new InvalidDataException($"{configPath}: the folder is already quantized ({stored}); it cannot load as {requested}.");
        return new BitsAndBytesConfig
        {
            LoadIn4Bit = stored.LoadIn4Bit, LoadIn8Bit = stored.LoadIn8Bit, QuantType = stored.QuantType, UseDoubleQuant = stored.UseDoubleQuant,
            SkipModules = stored.SkipModules, Int8Threshold = stored.Int8Threshold, ComputeDType = requested.ComputeDType,
        };
    }

    /// <summary>
    /// Writes a model folder as transformers' <c>save_pretrained</c> does: config.json and
    /// model.safetensors (a tied weight is saved once, under the embedding's name). A model with
    /// quantized layers is written in bitsandbytes' layout (<see cref="BitsAndBytesCheckpoint.Save"/>).
    /// </summary>
    public static void Save(nn.Module model, ModelConfig config, string folder)
    {
        if (model.modules().Any(m => m is QuantizedLinear))
        {
            string source = "the model config";
            BitsAndBytesConfig quantization = BitsAndBytesCheckpoint.ReadConfig(config, source)
                ?? throw new InvalidOperationException("The model has quantized layers but its config records no quantization_config.");
            BitsAndBytesCheckpoint.Save(model, config, quantization, folder);
            return;
        }
        Directory.CreateDirectory(folder);
        IReadOnlyDictionary<string, string> tied = (model as ITiedWeights)?.TiedParameters ?? new Dictionary<string, string>();
        var tensors = new List<SafetensorsWriteTensor>();
        foreach ((string name, var p) in model.named_parameters())
            if (!tied.ContainsKey(name)) tensors.Add(TensorBridge.ToWrite(name, p));
        SafetensorsWriter.Write(Path.Combine(folder, SafetensorsCheckpoint.SingleFileName), tensors, new Dictionary<string, string> { ["format"] = "pt" });
        AtomicFile.WriteAllBytes(Path.Combine(folder, "config.json"), System.Text.Encoding.UTF8.GetBytes(config.Raw.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true })));
    }
}
