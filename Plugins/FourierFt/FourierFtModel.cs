using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using PeftHost.Abstractions.Config;
using PeftHost.Abstractions.Layers;
using PeftHost.Abstractions.Surgery;
using PeftHost.Abstractions.Tuning;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftHost.Plugins.FourierFt;

/// <summary>
/// FourierFT applied to one model (PEFT's <c>FourierFTModel</c>): adapts Linear and GPT-2 Conv1D modules, with
/// a per-module n from <c>n_frequency_pattern</c>; <c>bias</c> trains biases on top of the base class's flags.
/// </summary>
public sealed class FourierFtModel(ModelSurgeon model, TunerContext context, FourierFtTuner tuner)
    : LayerTunerModel<FourierFtConfig, FourierFtLinear>(model, context, tuner)
{
    // PEFT's TRANSFORMERS_MODELS_TO_FOURIERFT_TARGET_MODULES_MAPPING for the model types the host builds.
    private static readonly Dictionary<string, string[]> DefaultTargets = new(StringComparer.Ordinal)
    {
        ["llama"] = ["q_proj", "v_proj"],
        ["mistral"] = ["q_proj", "v_proj"],
        ["qwen2"] = ["q_proj", "v_proj"],
        ["gpt2"] = ["mlp.c_proj"],
        ["bert"] = ["query", "value"],
    };

    // Biases this tuner made trainable (bias "all" / "fourier_only"), so it can take them back.
    private readonly List<Parameter> _trainableBiases = [];

    /// <inheritdoc />
    protected override bool Supports(nn.Module module) => module is Linear or Conv1D;

    /// <summary>For <c>all-linear</c>: Linear and Conv1D, as PEFT.</summary>
    protected override bool IsLinear(nn.Module module) => module is Linear or Conv1D;

    /// <summary>PEFT's <c>_prepare_adapter_config</c>: a missing <c>target_modules</c> comes from PEFT's table for the model type.</summary>
    protected override FourierFtConfig PrepareConfig(FourierFtConfig config)
    {
        if (config.TargetModules is not null) return config;
        if (Context.ModelType is not { } type || !DefaultTargets.TryGetValue(type, out string[]? names))
            throw new TunerConfigException($"adapter config field 'target_modules' is missing and FourierFT has no default for model type '{Context.ModelType ?? "unknown"}': Please specify `target_modules` in `peft_config`.");
        JsonObject json = config.ToJson();
        json["target_modules"] = new JsonArray([.. names.Select(n => JsonValue.Create(n))]);
        return ParseConfig(json);
    }

    /// <summary>PEFT's <c>_check_new_adapter_config</c> (one adapter with bias), then the targets by PEFT's rules.</summary>
    protected override IReadOnlyList<string> SelectTargets(string adapter, FourierFtConfig config, IReadOnlyList<(string Path, nn.Module Module)> candidates)
    {
        if (config.Bias != "none" && Adapters.Count > 0)
            throw new TunerConfigException($"adapter config field 'bias': FourierFTModel supports only 1 adapter with bias. When using multiple adapters, set bias to 'none' for all adapters ('{string.Join("', '", Adapters)}' exist).");
        if (config.Bias != "none")
            Context.Logger.LogWarning("FourierFT adapter '{Adapter}': bias '{Bias}' trains biases, which are not saved with the adapter (as in PEFT 0.13.2).", adapter, config.Bias);
        return base.SelectTargets(adapter, config, candidates);
    }

    /// <inheritdoc />
    protected override FourierFtLinear CreateLayer(string path, nn.Module<Tensor, Tensor> baseModule, FourierFtConfig config)
    {
        switch (baseModule)
        {
            case Linear linear:
                if (config.FanInFanOut)
                {
                    Context.Logger.LogWarning("FourierFT: fan_in_fan_out is set to True but the target module '{Path}' is a Linear. Setting fan_in_fan_out to False.", path);
                    config.FanInFanOut = false;
                }
                return new FourierFtLinear(linear);
            case Conv1D conv:
                if (!config.FanInFanOut)
                {
                    Context.Logger.LogWarning("FourierFT: fan_in_fan_out is set to False but the target module '{Path}' is a Conv1D. Setting fan_in_fan_out to True.", path);
                    config.FanInFanOut = true;
                }
                return new FourierFtLinear(conv);
            default:
                throw new TunerConfigException($"target module '{path}' is a {baseModule.GetType().Name}; FourierFT supports Linear and Conv1D.");
        }
    }

    /// <inheritdoc />
    protected override void AddAdapterToLayer(FourierFtLinear layer, string path, string adapter, FourierFtConfig config) =>
        layer.AddAdapter(adapter, config.NFrequencyOf(path), config.Scaling, config.RandomLocSeed, config.InitWeights, path);

    /// <summary>PEFT's <c>bias</c> on top of the base class's trainable flags: "all" trains every bias, "fourier_only" the adapted modules' biases.</summary>
    protected override void OnAdaptersChanged()
    {
        var wanted = new List<Parameter>();
        foreach (string adapter in ActiveAdapters)
        {
            FourierFtConfig config = GetConfig(adapter);
            if (config.Bias == "all")
                wanted.AddRange(Model.Root.named_parameters().Where(p => p.name.Contains("bias", StringComparison.Ordinal) && !p.name.Contains("fourierft_", StringComparison.Ordinal)).Select(p => p.parameter));
            else if (config.Bias == "fourier_only")
                wanted.AddRange(Layers.Values.Where(l => l.Adapters.Contains(adapter)).Select(l => l.Bias).OfType<Parameter>());
        }
        foreach (Parameter p in _trainableBiases.Where(p => !wanted.Any(w => w.Handle == p.Handle)))
            if (!p.IsInvalid) p.requires_grad = false;
        _trainableBiases.Clear();
        foreach (Parameter p in wanted)
        {
            p.requires_grad = true;
            _trainableBiases.Add(p);
        }
    }
}
