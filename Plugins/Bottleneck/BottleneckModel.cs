using PeftHost.Abstractions.Config;
using PeftHost.Abstractions.Layers;
using PeftHost.Abstractions.Surgery;
using PeftHost.Abstractions.Tuning;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftHost.Plugins.Bottleneck;

/// <summary>
/// Bottleneck adapters applied to one model: Linear and GPT-2 Conv1D targets by PEFT's naming rules, one layer
/// per module holding any number of serial and parallel adapters. Never mergeable (<see cref="CannotMergeReason"/>).
/// </summary>
public sealed class BottleneckModel(ModelSurgeon model, TunerContext context, BottleneckTuner tuner)
    : LayerTunerModel<BottleneckConfig, BottleneckLayer>(model, context, tuner)
{
    /// <inheritdoc />
    protected override bool Supports(nn.Module module) => module is Linear or Conv1D;

    /// <summary>For <c>all-linear</c>: Linear and Conv1D.</summary>
    protected override bool IsLinear(nn.Module module) => module is Linear or Conv1D;

    /// <inheritdoc />
    public override string CannotMergeReason =>
        "a bottleneck adapter adds up(act(down(·))) of the module's activations, a nonlinear function that no change of the base weights equals; unload() removes the adapters and gives the base model back";

    /// <summary>PEFT's targeting rules; a matched module of another type is named with its type.</summary>
    protected override IReadOnlyList<string> SelectTargets(string adapter, BottleneckConfig config, IReadOnlyList<(string Path, nn.Module Module)> candidates)
    {
        if (config.TargetModules is { IsAllLinear: false })
            foreach ((string path, nn.Module module) in candidates)
                if (!Supports(module) && TargetSelection.Matches(config, path))
                    throw new TunerConfigException($"adapter config field 'target_modules': {config.TargetModules} matches '{path}', a {module.GetType().Name}; bottleneck adapters attach to Linear and Conv1D modules.");
        return base.SelectTargets(adapter, config, candidates);
    }

    /// <inheritdoc />
    protected override BottleneckLayer CreateLayer(string path, nn.Module<Tensor, Tensor> baseModule, BottleneckConfig config) => baseModule switch
    {
        Linear linear => new BottleneckLayer(linear),
        Conv1D conv => new BottleneckLayer(conv),
        _ => throw new TunerConfigException($"target module '{path}' is a {baseModule.GetType().Name}; bottleneck adapters attach to Linear and Conv1D modules."),
    };

    /// <inheritdoc />
    protected override void AddAdapterToLayer(BottleneckLayer layer, string path, string adapter, BottleneckConfig config) =>
        layer.AddAdapter(adapter, config.Width(config.Parallel ? layer.InFeatures : layer.OutFeatures), config.Parallel, config.AdapterAct, config.AdapterDropout, config.Scaling, config.InitWeights);
}
