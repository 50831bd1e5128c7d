using PeftHost.Abstractions.Surgery;
using PeftHost.Abstractions.Tuning;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MyMethod;

/// <summary>
/// The method applied to one model: which modules it adapts (Linear ones, chosen by the config's
/// target_modules) and how a layer is built and given an adapter. Targeting, replacing modules, the
/// trainable rule, export, import and merging are the base class's.
/// </summary>
public sealed class MyMethodModel(ModelSurgeon model, TunerContext context, MyMethodTuner tuner)
    : LayerTunerModel<MyMethodConfig, MyMethodLinear>(model, context, tuner)
{
    /// <inheritdoc />
    protected override bool Supports(nn.Module module) => module is Linear;

    /// <inheritdoc />
    protected override MyMethodLinear CreateLayer(string path, nn.Module<Tensor, Tensor> baseModule, MyMethodConfig config) =>
        new((Linear)baseModule);

    /// <inheritdoc />
    protected override void AddAdapterToLayer(MyMethodLinear layer, string path, string adapter, MyMethodConfig config) =>
        layer.AddAdapter(adapter, config.R, config.Alpha, initialise: !Importing);
}
