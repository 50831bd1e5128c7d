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

    /// <summary>Why a merge is refused: the shift is folded into a base bias, which some targeted layers lack.</summary>
    public override string? CannotMergeReason => Layers.Where(l => !l.Value.CanMerge).Select(l => l.Key).ToList() is { Count: > 0 } noBias
        ? $"SSF folds its shift into the base layer's bias, and {string.Join(", ", noBias.Take(3))}{(noBias.Count > 3 ? $" and {noBias.Count - 3} more" : "")} have no bias"
        : null;

    /// <inheritdoc />
    protected override void AddAdapterToLayer(SsfLinear layer, string path, string adapter, SsfConfig config) =>
        layer.AddAdapter(adapter, Importing ? 0 : config.InitStd);
}
