using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using PeftHost.Abstractions.Config;
using PeftHost.Abstractions.Layers;
using PeftHost.Abstractions.State;
using PeftHost.Abstractions.Surgery;
using PeftHost.Abstractions.Tuning;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftHost.Plugins.Vera;

/// <summary>
/// VeRA applied to one model (PEFT's <c>VeraModel</c>): adapts Linear and GPT-2 Conv1D modules. Each adapter's
/// shared projections are made before its layers (PEFT's <c>_pre_injection_hook</c>), sized by its targets and
/// drawn from <c>projection_prng_key</c>; they are the model's own tensors, exported as <c>vera_A</c> /
/// <c>vera_B</c> (saved as <c>base_model.vera_A</c> / <c>base_model.vera_B</c>) when <c>save_projection</c>.
/// </summary>
public sealed class VeraModel(ModelSurgeon model, TunerContext context, VeraTuner tuner)
    : LayerTunerModel<VeraConfig, VeraLinear>(model, context, tuner)
{
    /// <summary>The model-level key of the shared A (saved as <c>base_model.vera_A</c>).</summary>
    public const string VeraAKey = "vera_A";

    /// <summary>The model-level key of the shared B (saved as <c>base_model.vera_B</c>).</summary>
    public const string VeraBKey = "vera_B";

    // PEFT's TRANSFORMERS_MODELS_TO_VERA_TARGET_MODULES_MAPPING for the model types the host builds.
    private static readonly Dictionary<string, string[]> DefaultTargets = new(StringComparer.Ordinal)
    {
        ["llama"] = ["q_proj", "v_proj"],
        ["mistral"] = ["q_proj", "v_proj"],
        ["qwen2"] = ["q_proj", "v_proj"],
        ["gpt2"] = ["c_attn"],
        ["bert"] = ["query", "value"],
    };

    private readonly Dictionary<string, VeraProjection> _projections = new(StringComparer.Ordinal);

    // Biases this tuner made trainable (bias "all" / "vera_only"), so it can take them back.
    private readonly List<Parameter> _trainableBiases = [];

    /// <inheritdoc />
    protected override bool Supports(nn.Module module) => module is Linear or Conv1D;

    /// <summary>For <c>all-linear</c>: Linear and Conv1D, as PEFT.</summary>
    protected override bool IsLinear(nn.Module module) => module is Linear or Conv1D;

    /// <summary>PEFT's <c>_prepare_adapter_config</c>: a missing <c>target_modules</c> comes from PEFT's table for the model type.</summary>
    protected override VeraConfig PrepareConfig(VeraConfig config)
    {
        if (config.TargetModules is not null) return config;
        if (Context.ModelType is not { } type || !DefaultTargets.TryGetValue(type, out string[]? names))
            throw new TunerConfigException($"adapter config field 'target_modules' is missing and VeRA has no default for model type '{Context.ModelType ?? "unknown"}': Please specify `target_modules` in `peft_config`.");
        JsonObject json = config.ToJson();
        json["target_modules"] = new JsonArray([.. names.Select(n => JsonValue.Create(n))]);
        return ParseConfig(json);
    }

    /// <summary>
    /// PEFT's checks of a new adapter (<c>_check_new_adapter_config</c>), the targets by PEFT's rules, then the
    /// adapter's shared projections, sized by the largest in and out features over the targets (<c>_find_dim</c>).
    /// </summary>
    protected override IReadOnlyList<string> SelectTargets(string adapter, VeraConfig config, IReadOnlyList<(string Path, nn.Module Module)> candidates)
    {
        if (config.Bias != "none" && Adapters.Count > 0)
            throw new TunerConfigException($"adapter config field 'bias': VeraModel supports only 1 adapter with bias. When using multiple adapters, set bias to 'none' for all adapters ('{string.Join("', '", Adapters)}' exist).");
        foreach (string existing in Adapters)
        {
            VeraConfig other = GetConfig(existing);
            if (other.ProjectionPrngKey != config.ProjectionPrngKey)
                throw new TunerConfigException($"adapter config field 'projection_prng_key': Vera PRNG initialisation key must be the same for all adapters. Got config.projection_prng_key={config.ProjectionPrngKey} but previous config had {other.ProjectionPrngKey} (adapter '{existing}').");
            if (other.SaveProjection != config.SaveProjection)
                throw new TunerConfigException($"adapter config field 'save_projection': VeRA projection weights must be saved for all adapters or none, but got multiple different values: [{config.SaveProjection}, {other.SaveProjection}] (adapter '{existing}').");
        }

        IReadOnlyList<string> targets = base.SelectTargets(adapter, config, candidates);
        var modules = candidates.ToDictionary(c => c.Path, c => c.Module, StringComparer.Ordinal);
        long maxIn = 0, maxOut = 0;
        Parameter? reference = null;
        foreach (string path in targets)
        {
            (Parameter weight, long fin, long fout) = modules[path] switch
            {
                Linear l => (l.weight!, l.weight!.shape[1], l.weight.shape[0]),
                Conv1D c => (c.weight, c.InFeatures, c.OutFeatures),
                var m => throw new TunerConfigException($"target module '{path}' is a {m.GetType().Name}; VeRA supports Linear and Conv1D."),
            };
            reference ??= weight;
            maxIn = Math.Max(maxIn, fin);
            maxOut = Math.Max(maxOut, fout);
        }
        if (_projections.Remove(adapter, out VeraProjection? stale)) stale.Dispose();
        _projections[adapter] = VeraProjection.Generate(config.R, maxIn, maxOut, config.ProjectionPrngKey, reference!.device, reference.dtype);
        if (config.Bias != "none")
            Context.Logger.LogWarning("VeRA adapter '{Adapter}': bias '{Bias}' trains biases, which are not saved with the adapter (as in PEFT 0.13.2).", adapter, config.Bias);
        return targets;
    }

    /// <inheritdoc />
    protected override VeraLinear CreateLayer(string path, nn.Module<Tensor, Tensor> baseModule, VeraConfig config)
    {
        switch (baseModule)
        {
            case Linear linear:
                if (config.FanInFanOut)
                {
                    Context.Logger.LogWarning("VeRA: fan_in_fan_out is set to True but the target module '{Path}' is a Linear. Setting fan_in_fan_out to False.", path);
                    config.FanInFanOut = false;
                }
                return new VeraLinear(linear);
            case Conv1D conv:
                if (!config.FanInFanOut)
                {
                    Context.Logger.LogWarning("VeRA: fan_in_fan_out is set to False but the target module '{Path}' is a Conv1D. Setting fan_in_fan_out to True.", path);
                    config.FanInFanOut = true;
                }
                return new VeraLinear(conv);
            default:
                throw new TunerConfigException($"target module '{path}' is a {baseModule.GetType().Name}; VeRA supports Linear and Conv1D.");
        }
    }

    /// <inheritdoc />
    protected override void AddAdapterToLayer(VeraLinear layer, string path, string adapter, VeraConfig config) =>
        layer.AddAdapter(adapter, _projections[adapter], config.R, config.VeraDropout, config.InitWeights, config.DInitial);

    /// <summary>The shared projections, exported (and saved) when <c>save_projection</c> is true, as PEFT saves them.</summary>
    protected override IReadOnlyDictionary<string, Tensor> ModelTensors(string adapter)
    {
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        if (GetConfig(adapter).SaveProjection && _projections.TryGetValue(adapter, out VeraProjection? p))
        {
            tensors[VeraAKey] = p.A;
            tensors[VeraBKey] = p.B;
        }
        return tensors;
    }

    /// <summary>
    /// Saved projections are loaded when present (they equal what <c>projection_prng_key</c> gives; PEFT 0.13.2
    /// regenerates them instead, with the same numbers). Absent, the regenerated ones stay: an error when the
    /// config says they were saved (PEFT's message), a warning otherwise, as PEFT's <c>set_peft_model_state_dict</c>.
    /// </summary>
    protected override void ImportModelTensors(string adapter, IReadOnlyDictionary<string, Tensor> tensors)
    {
        bool hasA = tensors.ContainsKey(VeraAKey), hasB = tensors.ContainsKey(VeraBKey);
        VeraConfig config = GetConfig(adapter);
        if (!hasA && !hasB)
        {
            if (config.SaveProjection)
                throw new InvalidDataException($"VeRA adapter '{adapter}': Specified to load vera_A and vera_B from state dictionary however they were not present! (save_projection is true, but the file has no base_model.{VeraAKey} / base_model.{VeraBKey}.)");
            Context.Logger.LogWarning("VeRA adapter '{Adapter}': vera_A and vera_B are not saved (save_projection false); they are drawn again from projection_prng_key {Key}.", adapter, config.ProjectionPrngKey);
            return;
        }
        if (!hasA || !hasB)
            throw new InvalidDataException($"VeRA adapter '{adapter}': the file has base_model.{(hasA ? VeraAKey : VeraBKey)} but not base_model.{(hasA ? VeraBKey : VeraAKey)}; both shared projections or neither are expected.");
        VeraProjection p = _projections[adapter];
        AdapterTensorCopy.CopyChecked(adapter, new Dictionary<string, Tensor>(StringComparer.Ordinal) { [VeraAKey] = p.A, [VeraBKey] = p.B }, tensors);
        var unexpected = tensors.Keys.Where(k => k is not (VeraAKey or VeraBKey)).ToList();
        if (unexpected.Count > 0)
            Context.Logger.LogWarning("VeRA adapter '{Adapter}': ignoring model-level tensor(s) {Keys}.", adapter, string.Join(", ", unexpected));
    }

    /// <summary>Frees the projections of adapters that are gone, and applies PEFT's <c>bias</c> on top of the base class's trainable flags.</summary>
    protected override void OnAdaptersChanged()
    {
        foreach (string gone in _projections.Keys.Where(a => !Adapters.Contains(a)).ToList())
            if (_projections.Remove(gone, out VeraProjection? p)) p.Dispose();

        var wanted = new List<Parameter>();
        foreach (string adapter in ActiveAdapters)
        {
            VeraConfig config = GetConfig(adapter);
            if (config.Bias == "all")
                wanted.AddRange(Model.Root.named_parameters().Where(p => p.name.Contains("bias", StringComparison.Ordinal) && !p.name.Contains("vera_lambda", StringComparison.Ordinal)).Select(p => p.parameter));
            else if (config.Bias == "vera_only")
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
