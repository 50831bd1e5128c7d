using PeftHost.Abstractions.Surgery;
using PeftHost.Abstractions.Tuning;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace OutputScale;

/// <summary>The method applied to one model: it adapts Linear modules.</summary>
public sealed class OutputScaleModel(ModelSurgeon model, TunerContext context, OutputScaleTuner tuner)
    : LayerTunerModel<OutputScaleConfig, OutputScaleLinear>(model, context, tuner)
{
    protected override bool Supports(nn.Module module) => module is Linear;

    protected override OutputScaleLinear CreateLayer(string path, nn.Module<Tensor, Tensor> baseModule, OutputScaleConfig config) => new((Linear)baseModule);

    protected override void AddAdapterToLayer(OutputScaleLinear layer, string path, string adapter, OutputScaleConfig config) =>
        layer.AddAdapter(adapter, config.InitScale);
}
