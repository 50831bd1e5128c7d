using PeftHost.Abstractions.Config;
using PeftHost.Abstractions.Layers;
using PeftHost.Abstractions.Surgery;
using PeftHost.Abstractions.Tuning;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftHost.Plugins.Lokr;

/// <summary>
/// LoKr applied to one model (PEFT's <c>LoKrModel</c>): adapts Linear layers, with a per-module rank from
/// <c>rank_pattern</c> (<c>alpha_pattern</c> is looked up as PEFT does, but alpha has no effect in 0.13.2).
/// GPT-2's Conv1D is refused as PEFT refuses it; PEFT's Conv2d LoKr is not implemented here.
/// </summary>
public sealed class LoKrModel(ModelSurgeon model, TunerContext context, LoKrTuner tuner)
    : LayerTunerModel<LoKrConfig, LoKrLinear>(model, context, tuner)
{
    /// <summary>Linear layers; Conv1D and Conv2d too, so that targeting one names why it is refused.</summary>
    protected override bool Supports(nn.Module module) => module is Linear or Conv1D or Conv2d;

    /// <summary>For <c>all-linear</c>: Linear and Conv1D, as PEFT (which then refuses the Conv1D).</summary>
    protected override bool IsLinear(nn.Module module) => module is Linear or Conv1D;

    /// <inheritdoc />
    protected override LoKrLinear CreateLayer(string path, nn.Module<Tensor, Tensor> baseModule, LoKrConfig config) => baseModule switch
    {
        Linear linear => new LoKrLinear(linear),
        Conv1D => throw new TunerConfigException(
            $"target module '{path}' is a Conv1D (GPT-2): LoKr does not adapt it, as PEFT 0.13.2 refuses it (\"Target module of type Conv1D not supported, currently only adapters for Conv2d, Linear are supported\")."),
        _ => throw new TunerConfigException(
            $"target module '{path}' is a {baseModule.GetType().Name}: this LoKr plugin adapts Linear layers only (PEFT's Conv2d LoKr is not implemented)."),
    };

    /// <inheritdoc />
    protected override void AddAdapterToLayer(LoKrLinear layer, string path, string adapter, LoKrConfig config)
    {
        layer.AddAdapter(adapter, config.RankOf(path), config.RankDropout, config.ModuleDropout, config.InitWeights, config.DecomposeBoth, config.DecomposeFactor);
    }
}
