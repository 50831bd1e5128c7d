using System.Text.Json.Nodes;

namespace PeftHost.Abstractions.Config;

/// <summary>
/// The base of every tuner's configuration: the fields all PEFT configs share, and the fields this
/// version does not know, kept so that they are written back unchanged.
/// </summary>
/// <remarks>
/// A tuner derives from this, reads its own fields in its constructor through
/// <see cref="ConfigFields"/>, and writes them in <see cref="WriteFields"/>. Configs are plain data:
/// the host turns them into JSON to hand them across a plugin reload.
/// </remarks>
public abstract class TunerConfig
{
    /// <summary>Reads the shared fields, then lets the derived config read its own.</summary>
    /// <param name="peftType">The <c>peft_type</c> the derived config serves.</param>
    /// <param name="fields">The config object's fields; the derived constructor reads the rest.</param>
    protected TunerConfig(string peftType, ConfigFields fields)
    {
        string? declared = fields.GetString("peft_type");
        if (declared is not null && declared != peftType)
            throw new TunerConfigException($"adapter config field 'peft_type': '{declared}' given to the {peftType} tuner.");
        PeftType = peftType;
        TaskType = fields.GetString("task_type");
        BaseModelNameOrPath = fields.GetString("base_model_name_or_path");
        Revision = fields.GetString("revision");
        InferenceMode = fields.GetBool("inference_mode", false);
    }

    /// <summary>The <c>peft_type</c>, e.g. "LORA".</summary>
    public string PeftType { get; }

    /// <summary>PEFT's <c>task_type</c> (e.g. "CAUSAL_LM", "SEQ_CLS"), or null.</summary>
    public string? TaskType { get; init; }

    /// <summary>The base model the adapter was made for, as PEFT records it.</summary>
    public string? BaseModelNameOrPath { get; init; }

    /// <summary>The base model's revision, as PEFT records it.</summary>
    public string? Revision { get; init; }

    /// <summary>Whether the adapter is for inference only (its parameters are not trainable).</summary>
    public bool InferenceMode { get; init; }

    /// <summary>Fields this version did not recognise, written back unchanged.</summary>
    public JsonObject UnknownFields { get; protected init; } = new();

    /// <summary>The config as PEFT's <c>adapter_config.json</c> object.</summary>
    public JsonObject ToJson()
    {
        var json = new JsonObject
        {
            ["peft_type"] = PeftType,
            ["task_type"] = TaskType,
            ["base_model_name_or_path"] = BaseModelNameOrPath,
            ["revision"] = Revision,
            ["inference_mode"] = InferenceMode,
        };
        WriteFields(json);
        foreach ((string key, JsonNode? value) in UnknownFields)
            if (!json.ContainsKey(key)) json[key] = value?.DeepClone();
        return json;
    }

    /// <summary>Writes the derived config's own fields by PEFT's names.</summary>
    protected abstract void WriteFields(JsonObject json);
}
