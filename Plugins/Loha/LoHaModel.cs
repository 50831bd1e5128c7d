using PeftHost.Abstractions.Config;
using PeftHost.Abstractions.Layers;
using PeftHost.Abstractions.Surgery;
using PeftHost.Abstractions.Tuning;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftHost.Plugins.Loha;

/// <summary>
/// LoHa applied to one model (PEFT's <c>LoHaModel</c>): adapts Linear layers, with a per-module rank and
/// alpha from <c>rank_pattern</c> / <c>alpha_pattern</c>. GPT-2's Conv1D is refused as PEFT refuses it;
/// PEFT's Conv2d LoHa is not implemented here.
/// </summary>
public sealed class LoHaModel(ModelSurgeon model, TunerContext context, LoHaTuner tuner)
    : LayerTunerModel<LoHaConfig, LoHaLinear>(model, context, tuner)
{
    /// <summary>Linear layers; Conv1D and Conv2d too, so that targeting one names why it is refused.</summary>
    protected override bool Supports(nn.Module module) => module is Linear or Conv1D or Conv2d;

    /// <summary>For <c>all-linear</c>: Linear and Conv1D, as PEFT (which then refuses the Conv1D).</summary>
    protected override bool IsLinear(nn.Module module) => module is Linear or Conv1D;

    /// <inheritdoc />
    protected override LoHaLinear CreateLayer(string path, nn.Module<Tensor, Tensor> baseModule, LoHaConfig config) => baseModule switch
    {
        Linear linear => new LoHaLinear(linear),
        Conv1D => throw new TunerConfigException(
            $"target module '{path}' is a Conv1D (GPT-2): LoHa does not adapt it, as PEFT 0.13.2 refuses it (\"Target module of type Conv1D not supported, currently only adapters for Conv2d, Linear are supported\")."),
        _ => throw new TunerConfigException(
            $"target module '{path}' is a {baseModule.GetType().Name}: this LoHa plugin adapts Linear layers only (PEFT's Conv2d LoHa is not implemented)."),
    };

    /// <inheritdoc />
    protected override void AddAdapterToLayer(LoHaLinear layer, string path, string adapter, LoHaConfig config)
    {
        (int r, double alpha) = config.RankAndAlpha(path);
        layer.AddAdapter(adapter, r, alpha, config.RankDropout, config.ModuleDropout, config.InitWeights);
    }
}
