using System.Text.Json.Nodes;
using PeftHost.Abstractions.Surgery;
using PeftHost.Abstractions.Tuning;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftHost.Plugins.Lora;

/// <summary>LoRA applied to one model (PEFT's <c>LoraModel</c>).</summary>
public sealed class LoraModel(ModelSurgeon model, TunerContext context) : LayerTunerModel<LoraConfig, LoraLinear>(model, context)
{
    /// <inheritdoc />
    protected override LoraConfig ParseConfig(JsonObject json) => new(json);

    /// <inheritdoc />
    protected override bool Supports(nn.Module module) => module is Linear;

    /// <inheritdoc />
    protected override LoraLinear CreateLayer(string path, nn.Module<Tensor, Tensor> baseModule, LoraConfig config) =>
        new((Linear)baseModule);

    /// <inheritdoc />
    protected override void AddAdapterToLayer(LoraLinear layer, string path, string adapter, LoraConfig config) =>
        layer.AddAdapter(adapter, config.R, config.Scaling(config.R), config.LoraDropout, config.InitLoraWeights);
}
