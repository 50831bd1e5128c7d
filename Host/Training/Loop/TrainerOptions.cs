using System.Text.Json.Nodes;
using PeftHost.Training.Data;
using static TorchSharp.torch;

namespace PeftHost.Training.Loop;

/// <summary>What the trainer needs besides the arguments: the task, the adapter, where the model came from.</summary>
public sealed record TrainerOptions
{
    /// <summary>Causal LM or sequence classification.</summary>
    public TaskKind Task { get; init; } = TaskKind.CausalLM;

    /// <summary>The id padding is filled with (never attended, never counted).</summary>
    public int PadTokenId { get; init; }

    /// <summary>The adapter trained (its parameters are the trainable ones).</summary>
    public string AdapterName { get; init; } = "default";

    /// <summary>Recorded as base_model_name_or_path in every saved adapter config and model card.</summary>
    public string? BaseModelNameOrPath { get; init; }

    /// <summary>What else defines the run (e.g. data_sha256, base_model, adapter_config), checked on resume.</summary>
    public JsonObject RunIdentity { get; init; } = [];

    /// <summary>The device the batches go to (the model's).</summary>
    public Device Device { get; init; } = CPU;

    /// <summary>Write training_curves.png into the output folder at the end.</summary>
    public bool WriteCurves { get; init; } = true;
}
