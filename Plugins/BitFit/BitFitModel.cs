using PeftHost.Abstractions.Config;
using PeftHost.Abstractions.Layers;
using PeftHost.Abstractions.Surgery;
using PeftHost.Abstractions.Tuning;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Plugins.BitFit;

/// <summary>
/// BitFit applied to one model: the modules whose bias terms train are every module with a bias parameter (null
/// <c>target_modules</c>) or those the targets name (PEFT's rules; matched modules without a bias are skipped),
/// never a <c>modules_to_save</c> module or one inside it. The bias is saved under the module's own
/// <c>bias</c> key, so a merged model's bias is exactly the saved tensor.
/// </summary>
public sealed class BitFitModel(ModelSurgeon model, TunerContext context, BitFitTuner tuner)
    : LayerTunerModel<BitFitConfig, BitFitLayer>(model, context, tuner)
{
    private const string Container = "bitfit_bias";

    /// <inheritdoc />
    protected override bool Supports(nn.Module module) => BitFitLayer.HasBias(module);

    /// <inheritdoc />
    protected override bool IsLinear(nn.Module module) => module is TorchSharp.Modules.Linear or Conv1D;

    /// <summary><c>bitfit_bias</c> is saved as the module's <c>bias</c> (docs/methods/bitfit.md).</summary>
    protected override string SavedKey(string layerKey) => layerKey == Container ? "bias" : layerKey;

    /// <summary>BitFit's own rule (docs/methods/bitfit.md): which modules' biases train.</summary>
    protected override IReadOnlyList<string> SelectTargets(string adapter, BitFitConfig config, IReadOnlyList<(string Path, nn.Module Module)> candidates)
    {
        // modules_to_save modules (PEFT's rule: the path equals or ends with ".<name>") and everything inside them.
        var copies = config.ModulesToSave is { } names
            ? candidates.Select(c => c.Path).Where(p => names.Any(n => p == n || p.EndsWith("." + n, StringComparison.Ordinal))).ToList()
            : [];
        bool InCopy(string path) => copies.Any(c => path == c || path.StartsWith(c + ".", StringComparison.Ordinal));
        string? head = OutputHeadPath();

        var eligible = candidates.Where(c => Supports(c.Module) && !InCopy(c.Path)).ToList();
        List<string> selected;
        if (config.TargetModules is null)
            selected = eligible.Where(c => config.ExcludeModules?.Matches(c.Path) != true).Select(c => c.Path).ToList();
        else if (config.TargetModules.IsAllLinear)
            selected = eligible.Where(c => IsLinear(c.Module) && c.Path != head && !(head is not null && c.Path.EndsWith("." + head, StringComparison.Ordinal)) && TargetSelection.Matches(config, c.Path)).Select(c => c.Path).ToList();
        else
            selected = eligible.Where(c => TargetSelection.Matches(config, c.Path)).Select(c => c.Path).ToList();

        if (config.TargetModules?.Names is { } entries)
            foreach (string entry in entries)
                if (!selected.Any(p => p == entry || p.EndsWith("." + entry, StringComparison.Ordinal)))
                {
                    var without = candidates.Where(c => (c.Path == entry || c.Path.EndsWith("." + entry, StringComparison.Ordinal))).Select(c => c.Path).Take(4).ToList();
                    throw new TunerConfigException($"adapter config field 'target_modules': '{entry}' matches no module with a bias (a bias parameter of a Linear, Conv1D or LayerNorm, outside modules_to_save{(config.LayersToTransform is null ? "" : " and within layers_to_transform")})" +
                        (without.Count > 0 ? $"; it matches only {string.Join(", ", without)}." : "."));
                }
        if (selected.Count == 0)
            throw new TunerConfigException($"target_modules {config.TargetModules?.ToString() ?? "null (every module with a bias)"} matched no module with a bias. Modules with a bias: {string.Join(", ", eligible.Select(c => c.Path).Take(12))}.");
        return selected;
    }

    /// <inheritdoc />
    protected override BitFitLayer CreateLayer(string path, nn.Module<Tensor, Tensor> baseModule, BitFitConfig config) => new(baseModule, path);

    /// <inheritdoc />
    protected override void AddAdapterToLayer(BitFitLayer layer, string path, string adapter, BitFitConfig config) => layer.AddAdapter(adapter);
}
