using System.Text.Json.Nodes;
using PeftHost.Formats.BitsAndBytes;
using static TorchSharp.torch;

namespace PeftHost.Training.Jobs;

/// <summary>Everything `pefthost train` is given: the model, the data, the adapter to start from, the settings.</summary>
public sealed record FineTuningRequest
{
    /// <summary>A Hugging Face model folder (config.json, safetensors, tokenizer files).</summary>
    public required string ModelFolder { get; init; }

    /// <summary>The training data (.jsonl or .parquet).</summary>
    public required string DataFile { get; init; }

    /// <summary>Evaluation data; without it, eval_split holds some training rows out when set.</summary>
    public string? EvalDataFile { get; init; }

    /// <summary>A fresh adapter from this adapter_config.json (exclusive with <see cref="InitAdapterFolder"/>).</summary>
    public string? AdapterConfigFile { get; init; }

    /// <summary>Start from this PEFT adapter folder (its config and weights, trainable).</summary>
    public string? InitAdapterFolder { get; init; }

    /// <summary>The training arguments as a config object (file plus overrides; output_dir set).</summary>
    public required JsonObject Arguments { get; init; }

    /// <summary>Where the arguments came from, for error messages.</summary>
    public string ArgumentsSource { get; init; } = "training config";

    /// <summary>Resume: null = a new run; "" = the latest checkpoint of output_dir; else a checkpoint folder.</summary>
    public string? Resume { get; init; }

    /// <summary>
    /// Load the base quantized (QLoRA: transformers' <c>BitsAndBytesConfig</c>); it takes the place of the training
    /// config's <c>quantization_config</c>. Null: that field's, else the base as stored.
    /// </summary>
    public BitsAndBytesConfig? Quantization { get; init; }

    /// <summary>The device.</summary>
    public Device Device { get; init; } = CPU;

    /// <summary>The plugins folder.</summary>
    public required string PluginsFolder { get; init; }
}
