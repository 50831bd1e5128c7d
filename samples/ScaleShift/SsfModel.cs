using PeftHost.Abstractions.Layers;
using PeftHost.Abstractions.Surgery;
using PeftHost.Abstractions.Tuning;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ScaleShift;

/// <summary>SSF on a model: the Linear (or GPT-2 Conv1D) modules named by <c>target_modules</c> get a scale and a shift.</summary>
public sealed class SsfModel(ModelSurgeon model, TunerContext context, SsfTuner tuner)
    : LayerTunerModel<SsfConfig, SsfLinear>(model, context, tuner)
{
    /// <inheritdoc />
    protected override bool Supports(nn.Module module) => module is Linear or Conv1D;

    /// <inheritdoc />
    protected override SsfLinear CreateLayer(string path, nn.Module<Tensor, Tensor> baseModule, SsfConfig config) =>
        baseModule is Conv1D conv ? new SsfLinear(conv) : new SsfLinear((Linear)baseModule);

    /// <inheritdoc />
    protected override void AddAdapterToLayer(SsfLinear layer, string path, string adapter, SsfConfig config) =>
        layer.AddAdapter(adapter, Importing ? 0 : config.InitStd);
}
