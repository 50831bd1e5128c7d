using PeftHost.Abstractions.Config;
using PeftHost.Abstractions.Layers;
using PeftHost.Abstractions.Surgery;
using PeftHost.Abstractions.Tuning;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftHost.Plugins.Oft;

/// <summary>
/// OFT applied to one model (PEFT 0.13.2's <c>OFTModel</c>): adapts Linear layers, with a per-module number
/// of blocks from <c>rank_pattern</c>. GPT-2's Conv1D is refused as PEFT refuses it; PEFT's Conv2d OFT is not
/// implemented here. Tensors of PEFT 0.14's OFT (<c>oft_s</c>, <c>oft_R.weight</c>) in an imported adapter
/// are refused with the reason, as its config is.
/// </summary>
public sealed class OftModel(ModelSurgeon model, TunerContext context, OftTuner tuner)
    : LayerTunerModel<OftConfig, OftLinear>(model, context, tuner)
{
    /// <summary>Linear layers; Conv1D and Conv2d too, so that targeting one names why it is refused.</summary>
    protected override bool Supports(nn.Module module) => module is Linear or Conv1D or Conv2d;

    /// <summary>For <c>all-linear</c>: Linear and Conv1D, as PEFT (which then refuses the Conv1D).</summary>
    protected override bool IsLinear(nn.Module module) => module is Linear or Conv1D;

    /// <inheritdoc />
    protected override OftLinear CreateLayer(string path, nn.Module<Tensor, Tensor> baseModule, OftConfig config) => baseModule switch
    {
        Linear linear => new OftLinear(linear),
        Conv1D => throw new TunerConfigException(
            $"target module '{path}' is a Conv1D (GPT-2): OFT does not adapt it, as PEFT 0.13.2 refuses it (\"Target module of type Conv1D not supported, currently only adapters for Conv2d, Linear are supported\")."),
        _ => throw new TunerConfigException(
            $"target module '{path}' is a {baseModule.GetType().Name}: this OFT plugin adapts Linear layers only (PEFT's Conv2d OFT is not implemented)."),
    };

    /// <inheritdoc />
    protected override void AddAdapterToLayer(OftLinear layer, string path, string adapter, OftConfig config)
    {
        foreach (string newer in (string[])[$"{path}.oft_s", $"{path}.oft_R.weight"])
            if (ImportingTensors.ContainsKey(newer))
                throw new TunerConfigException($"adapter '{adapter}' holds the tensor '{newer}': {OftConfig.NewerOftRefusal}.");
        layer.AddAdapter(adapter, config.RankOf(path), config.ModuleDropout, config.InitWeights, config.Coft, config.Eps, config.BlockShare);
    }
}
