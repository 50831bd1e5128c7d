using System.Text.Json.Nodes;
using PeftHost.Abstractions.Config;
using PeftHost.Abstractions.Surgery;
using PeftHost.Abstractions.Tuning;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Plugins.LnTuning;

/// <summary>
/// LN tuning applied to one model (PEFT's <c>LNTuningModel</c>): any module the plugin can copy may be a target
/// (PEFT targets any module; here LayerNorm, RMSNorm and other copyable modules); a missing
/// <c>target_modules</c> is filled from PEFT's table for the model type.
/// </summary>
public sealed class LnTuningModel(ModelSurgeon model, TunerContext context, LnTuningTuner tuner)
    : LayerTunerModel<LnTuningConfig, LnTuningLayer>(model, context, tuner)
{
    // PEFT's TRANSFORMERS_MODELS_TO_LNTUNING_TARGET_MODULES_MAPPING for the model types the host builds (BERT has none in PEFT).
    private static readonly Dictionary<string, string[]> DefaultTargets = new(StringComparer.Ordinal)
    {
        ["llama"] = ["input_layernorm", "post_attention_layernorm", "norm"],
        ["mistral"] = ["input_layernorm", "post_attention_layernorm", "norm"],
        ["qwen2"] = ["post_attention_layernorm"],
        ["gpt2"] = ["ln_1", "ln_2", "ln_f"],
    };

    /// <inheritdoc />
    protected override bool Supports(nn.Module module) => ModuleCopy.CanCopy(module);

    /// <summary>PEFT's <c>_prepare_adapter_config</c>: a missing <c>target_modules</c> comes from PEFT's table for the model type.</summary>
    protected override LnTuningConfig PrepareConfig(LnTuningConfig config)
    {
        if (config.TargetModules is not null) return config;
        if (Context.ModelType is not { } type || !DefaultTargets.TryGetValue(type, out string[]? names))
            throw new TunerConfigException($"adapter config field 'target_modules' is missing and LN tuning has no default for model type '{Context.ModelType ?? "unknown"}': Please specify `target_modules` in `peft_config`.");
        JsonObject json = config.ToJson();
        json["target_modules"] = new JsonArray([.. names.Select(n => JsonValue.Create(n))]);
        return ParseConfig(json);
    }

    /// <inheritdoc />
    protected override LnTuningLayer CreateLayer(string path, nn.Module<Tensor, Tensor> baseModule, LnTuningConfig config) => new(baseModule, path);

    /// <inheritdoc />
    protected override void AddAdapterToLayer(LnTuningLayer layer, string path, string adapter, LnTuningConfig config) => layer.AddAdapter(adapter);
}
