using Microsoft.Extensions.Logging;
using PeftHost.Abstractions.Config;
using PeftHost.Abstractions.Layers;
using PeftHost.Abstractions.Surgery;
using PeftHost.Abstractions.Tuning;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftHost.Plugins.IA3;

/// <summary>(IA)³ applied to one model (PEFT's <c>IA3Model</c>): its config is parsed by the tuner, its vectors train by the base class's rule.</summary>
public sealed class IA3Model(ModelSurgeon model, TunerContext context, IA3Tuner tuner) : LayerTunerModel<IA3Config, IA3Linear>(model, context, tuner)
{
    /// <inheritdoc />
    protected override bool Supports(nn.Module module) => module is Linear or QuantizedLinear;

    /// <inheritdoc />
    protected override IA3Linear CreateLayer(string path, nn.Module<Tensor, Tensor> baseModule, IA3Config config)
    {
        if (config.FanInFanOut)
            Context.Logger.LogWarning("IA3: fan_in_fan_out is true but '{Path}' is a Linear layer; it is ignored (as PEFT sets it to false).", path);
        return baseModule is QuantizedLinear quantized ? new(quantized, config.IsFeedforward(path)) : new((Linear)baseModule, config.IsFeedforward(path));
    }

    /// <inheritdoc />
    protected override void AddAdapterToLayer(IA3Linear layer, string path, string adapter, IA3Config config)
    {
        bool feedforward = config.IsFeedforward(path);
        if (feedforward != layer.IsFeedforward)
            throw new TunerConfigException(
                $"Adapter '{adapter}': module '{path}' is {(feedforward ? "" : "not ")}a feedforward module by its feedforward_modules, " +
                $"but the adapters already on it treat it as {(layer.IsFeedforward ? "feedforward" : "not feedforward")}; IA3 adapters on one module must agree.");
        layer.AddAdapter(adapter, config.InitIA3Weights);
    }
}
