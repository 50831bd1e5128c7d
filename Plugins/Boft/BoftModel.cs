using Microsoft.Extensions.Logging;
using PeftHost.Abstractions.Config;
using PeftHost.Abstractions.Layers;
using PeftHost.Abstractions.Surgery;
using PeftHost.Abstractions.Tuning;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftHost.Plugins.Boft;

/// <summary>
/// BOFT applied to one model (PEFT 0.13.2's <c>BOFTModel</c>): adapts Linear layers (GPT-2's Conv1D is refused as
/// PEFT refuses it; PEFT's Conv2d BOFT is not implemented here). The number of butterfly factors of a loaded
/// adapter is its <c>boft_R</c>'s first dimension; a new adapter gets the config's. <c>bias</c> trains base biases
/// as PEFT does, and "all" saves every bias of the model with the adapter.
/// </summary>
public sealed class BoftModel(ModelSurgeon model, TunerContext context, BoftTuner tuner)
    : LayerTunerModel<BoftConfig, BoftLinear>(model, context, tuner)
{
    // Biases this tuner made trainable (bias "all" / "boft_only"), so it can take them back.
    private readonly List<Parameter> _trainableBiases = [];

    // Adapters already warned that their trained biases are not saved (bias "boft_only"), to warn once, not per layer.
    private readonly HashSet<string> _warnedBoftOnly = new(StringComparer.Ordinal);

    /// <summary>Linear layers; Conv1D and Conv2d too, so that targeting one names why it is refused.</summary>
    protected override bool Supports(nn.Module module) => module is Linear or Conv1D or Conv2d;

    /// <summary>For <c>all-linear</c>: Linear and Conv1D, as PEFT (which then refuses the Conv1D).</summary>
    protected override bool IsLinear(nn.Module module) => module is Linear or Conv1D;

    /// <inheritdoc />
    protected override BoftLinear CreateLayer(string path, nn.Module<Tensor, Tensor> baseModule, BoftConfig config)
    {
        switch (baseModule)
        {
            case Linear linear:
                if (config.FanInFanOut)
                {
                    // As PEFT's _create_new_module: the flag is wrong for a Linear, and the config is corrected.
                    Context.Logger.LogWarning("BOFT: fan_in_fan_out is set to True but the target module '{Path}' is a Linear. Setting fan_in_fan_out to False.", path);
                    config.FanInFanOut = false;
                }
                return new BoftLinear(linear);
            case Conv1D:
                throw new TunerConfigException(
                    $"target module '{path}' is a Conv1D (GPT-2): BOFT does not adapt it, as PEFT 0.13.2 refuses it (\"Target module Conv1D() is not supported. Currently, only `torch.nn.Linear` and `torch.nn.Conv2d` are supported.\").");
            default:
                throw new TunerConfigException($"target module '{path}' is a {baseModule.GetType().Name}: this BOFT plugin adapts Linear layers only (PEFT's Conv2d BOFT is not implemented).");
        }
    }

    /// <inheritdoc />
    protected override void AddAdapterToLayer(BoftLinear layer, string path, string adapter, BoftConfig config)
    {
        // As PEFT's _check_new_adapter_config: a bias mode other than "none" only for a model's sole adapter.
        if (config.Bias != "none" && Adapters.Count > 0)
            throw new TunerConfigException($"adapter config field 'bias': BOFTModel supports only 1 adapter with bias; with several adapters ('{string.Join("', '", Adapters)}' exist), set bias to 'none' for all of them.");
        int factors = config.ButterflyFactor;
        if (Importing && ImportingTensors.TryGetValue($"{path}.boft_R", out Tensor? saved) && saved.dim() == 4 && saved.shape[0] != factors)
        {
            // PEFT without its CUDA extension builds one factor whatever the config says, and saves the config unchanged.
            if (saved.shape[0] < 1) throw new InvalidDataException($"adapter '{adapter}': '{path}.boft_R' has shape [{string.Join(", ", saved.shape)}]: no butterfly factor.");
            Context.Logger.LogInformation("BOFT: '{Path}' holds {Saved} butterfly factor(s) where the config asks for {Config} (as PEFT without its CUDA extension saves); using {Saved}.", path, saved.shape[0], factors, saved.shape[0]);
            factors = (int)saved.shape[0];
        }
        (int blockSize, int blockNum) = BoftLinear.Blocks(path, layer.InFeatures, config.BlockSize, config.BlockNum, factors);
        layer.AddAdapter(adapter, blockSize, blockNum, factors, config.Dropout, config.InitWeights);
        if (config.Bias == "boft_only" && _warnedBoftOnly.Add(adapter))
            Context.Logger.LogWarning("BOFT: adapter '{Adapter}' has bias 'boft_only': the adapted layers' biases train, but PEFT 0.13.2 does not save them with the adapter, nor does this plugin (to write the same file).", adapter);
    }

    /// <summary>PEFT's <c>bias: "all"</c>: every bias of the model is saved with the adapter (wrapped ones as <c>...base_layer.bias</c>).</summary>
    protected override IReadOnlyDictionary<string, Tensor> SavedBaseModelTensors(string adapter) =>
        GetConfig(adapter).Bias == "all"
            ? Model.Root.named_parameters().Where(p => IsBias(p.name)).ToDictionary(p => p.name, p => (Tensor)p.parameter, StringComparer.Ordinal)
            : new Dictionary<string, Tensor>();

    /// <summary>
    /// PEFT's <c>bias</c> on top of the base class's trainable flags: for active adapters, "all" trains every bias of the
    /// model and "boft_only" the biases of the adapted layers. The host froze the base model before.
    /// </summary>
    protected override void OnAdaptersChanged()
    {
        var wanted = new List<Parameter>();
        foreach (string adapter in ActiveAdapters)
        {
            BoftConfig config = GetConfig(adapter);
            if (config.InferenceMode) continue;
            if (config.Bias == "all")
                wanted.AddRange(Model.Root.named_parameters().Where(p => IsBias(p.name)).Select(p => p.parameter));
            else if (config.Bias == "boft_only")
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

    // PEFT's test is '"bias" in name' over the model's parameters; BOFT's own tensors are never biases.
    private static bool IsBias(string name) => name.Contains("bias", StringComparison.Ordinal) && !name.Contains("boft_", StringComparison.Ordinal);
}
