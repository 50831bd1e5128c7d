using Microsoft.Extensions.Logging;
using PeftHost.Abstractions.Config;
using PeftHost.Abstractions.Layers;
using PeftHost.Abstractions.Surgery;
using PeftHost.Abstractions.Tuning;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftHost.Plugins.Lora;

/// <summary>
/// LoRA applied to one model (PEFT's <c>LoraModel</c>): adapts Linear, Embedding and GPT-2 Conv1D
/// modules, with per-module rank and alpha from <c>rank_pattern</c> / <c>alpha_pattern</c>; the
/// trainable flags are the base class's (only the active adapters train), to which <c>bias</c> adds biases.
/// </summary>
public sealed partial class LoraModel(ModelSurgeon model, TunerContext context, LoraTuner tuner)
    : LayerTunerModel<LoraConfig, LoraLayer>(model, context, tuner), ITunerModel, IHotswapModel, IWeightedAdapterModel, IWeightConversionModel // ITunerModel again: its ExportAdapter is LoRA's (LoraModel.Hotswap)
{
    // Biases this tuner made trainable (bias "all" / "lora_only"), so it can take them back.
    private readonly List<Parameter> _trainableBiases = [];

    // PEFT's EMBEDDING_LAYER_NAMES: when target_modules names one, save_pretrained also saves that layer's base weights.
    private static readonly string[] EmbeddingLayerNames = ["embed_tokens", "lm_head"];

    /// <inheritdoc />
    protected override string SavedKey(string layerKey) =>
        layerKey == "lora_magnitude_vector.weight" ? "lora_magnitude_vector" : layerKey; // PEFT 0.13 saves DoRA's magnitude without ".weight"

    /// <inheritdoc />
    protected override bool ExportsBaseLayer(string path, LoraConfig config) =>
        config.TargetModules?.Names is { } names &&
        EmbeddingLayerNames.Any(e => names.Contains(e) && (path == e || path.EndsWith("." + e, StringComparison.Ordinal)));

    /// <inheritdoc />
    protected override bool Supports(nn.Module module) => module is Linear or Embedding or Conv1D;

    /// <summary>For <c>all-linear</c>: Linear and Conv1D, as PEFT.</summary>
    protected override bool IsLinear(nn.Module module) => module is Linear or Conv1D;

    /// <inheritdoc />
    protected override LoraLayer CreateLayer(string path, nn.Module<Tensor, Tensor> baseModule, LoraConfig config)
    {
        switch (baseModule)
        {
            case Linear linear:
                if (config.FanInFanOut)
                {
                    // As PEFT's dispatch: the flag is wrong for a Linear, and the config is corrected.
                    Context.Logger.LogWarning("LoRA: fan_in_fan_out is set to True but the target module '{Path}' is a Linear. Setting fan_in_fan_out to False.", path);
                    config.FanInFanOut = false;
                }
                return new LoraLinear(linear);
            case Conv1D conv:
                if (!config.FanInFanOut)
                {
                    Context.Logger.LogWarning("LoRA: fan_in_fan_out is set to False but the target module '{Path}' is a Conv1D. Setting fan_in_fan_out to True.", path);
                    config.FanInFanOut = true;
                }
                return new LoraConv1D(conv);
            case Embedding embedding:
                return new LoraEmbedding(embedding);
            default:
                throw new TunerConfigException($"target module '{path}' is a {baseModule.GetType().Name}; LoRA supports Linear, Embedding and Conv1D.");
        }
    }

    /// <inheritdoc />
    protected override void AddAdapterToLayer(LoraLayer layer, string path, string adapter, LoraConfig config)
    {
        // As PEFT's _check_new_adapter_config: a bias mode other than "none" only for a model's sole adapter.
        if (config.Bias != "none" && Adapters.Count > 0)
            throw new TunerConfigException($"adapter config field 'bias': LoraModel supports only 1 adapter with bias; with several adapters ('{string.Join("', '", Adapters)}' exist), set bias to 'none' for all of them.");
        (int r, double alpha) = config.RankAndAlpha(path);
        if (config.ModifiesBaseWeights && !Importing)
            Context.Logger.LogInformation("LoRA: init_lora_weights {Init} replaces the base weight of '{Path}' by its residual.", config.InitLoraWeights, path);
        // On import the tensors are copied in next: no initialisation, and above all no PiSSA/OLoRA residual.
        layer.AddAdapter(adapter, r, alpha, config.Scaling(r, alpha), config.LoraDropout, Importing ? null : config.InitLoraWeights, config.UseDora, path);
    }

    /// <summary>
    /// PEFT's <c>bias</c> on top of the base class's trainable flags: for active adapters, "all" trains
    /// every bias of the model and "lora_only" the biases of the adapted modules. The host froze the base model before.
    /// </summary>
    protected override void OnAdaptersChanged()
    {
        var wanted = new List<Parameter>();
        foreach (string adapter in ActiveAdapters)
        {
            LoraConfig config = GetConfig(adapter);
            if (config.Bias == "all")
                wanted.AddRange(Model.Root.named_parameters().Where(p => p.name.Contains("bias", StringComparison.Ordinal) && !IsAdapterParameter(p.name)).Select(p => p.parameter));
            else if (config.Bias == "lora_only")
                wanted.AddRange(Layers.Values.Select(l => l.Bias).OfType<Parameter>());
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

    private static bool IsAdapterParameter(string name) =>
        name.Contains(".lora_", StringComparison.Ordinal) || name.StartsWith("lora_", StringComparison.Ordinal);
}
