using System.Text.RegularExpressions;
using PeftHost.Abstractions.Config;

namespace PeftHost.Abstractions.Tuning;

/// <summary>
/// PEFT's rules for which modules a targeted config adapts: <c>target_modules</c> (names matched
/// on the path's end, a full-match regex, or <c>all-linear</c>), minus <c>exclude_modules</c>,
/// restricted to <c>layers_to_transform</c> when given.
/// </summary>
public static class TargetSelection
{
    private static readonly string[] DefaultLayerPatterns = ["layers", "h", "block", "blocks", "layer"];

    /// <summary>
    /// The paths selected among <paramref name="candidates"/> (path and whether the module type is
    /// one the tuner can adapt; for <c>all-linear</c>, whether it is a linear layer).
    /// </summary>
    /// <param name="config">The targeting fields.</param>
    /// <param name="candidates">Every module path, with whether the tuner supports that module.</param>
    /// <param name="outputHead">The output head's path, which <c>all-linear</c> leaves out (e.g. "lm_head").</param>
    /// <exception cref="TunerConfigException">Nothing matches; the message names the targets and some module paths.</exception>
    public static IReadOnlyList<string> Select(TargetedTunerConfig config, IReadOnlyList<(string Path, bool Supported)> candidates, string? outputHead)
    {
        ModuleSelector targets = config.TargetModules
            ?? throw new TunerConfigException("adapter config field 'target_modules' is missing: name the modules to adapt (a list, a regular expression, or \"all-linear\").");

        var selected = new List<string>();
        foreach ((string path, bool supported) in candidates)
        {
            if (targets.IsAllLinear && (!supported || path == outputHead || (outputHead is not null && path.EndsWith("." + outputHead, StringComparison.Ordinal)))) continue;
            if (!Matches(config, path)) continue;
            if (!supported)
                throw new TunerConfigException($"target module '{path}' matches target_modules {targets} but its type is not supported by this tuner.");
            selected.Add(path);
        }
        if (selected.Count == 0)
        {
            string sample = string.Join(", ", candidates.Where(c => c.Supported).Select(c => c.Path).Take(12));
            throw new TunerConfigException($"target_modules {targets} matched no module of the model. Modules this tuner can adapt: {(sample.Length == 0 ? "none" : sample)}.");
        }
        return selected;
    }

    /// <summary>
    /// Whether PEFT's rules select the module at <paramref name="path"/> by its path alone (contract 1.1):
    /// <c>target_modules</c> (a name the path equals or ends with after a ".", or a full-match regex), not
    /// <c>exclude_modules</c>, and within <c>layers_to_transform</c> when that is given with a list of names.
    /// False when <c>target_modules</c> is null; for <c>all-linear</c> every path matches here (the caller
    /// decides by the module's type, and leaves out the output head). For a tuner with its own selection
    /// rule (<see cref="LayerTunerModel{TConfig, TLayer}"/>'s <c>SelectTargets</c>).
    /// </summary>
    public static bool Matches(TargetedTunerConfig config, string path)
    {
        ModuleSelector? targets = config.TargetModules;
        if (targets is null) return false;
        if (!targets.IsAllLinear && !targets.Matches(path)) return false;
        if (config.ExcludeModules is not null && config.ExcludeModules.Matches(path)) return false;
        if (config.LayersToTransform is not null && targets.Names is not null && !InLayers(path, config)) return false;
        return true;
    }

    private static bool InLayers(string path, TargetedTunerConfig config)
    {
        IEnumerable<string> patterns = config.LayersPattern ?? DefaultLayerPatterns;
        foreach (string pattern in patterns)
        {
            Match m = Regex.Match(path, @"(?:^|\.)" + Regex.Escape(pattern) + @"\.(\d+)\.");
            if (m.Success) return config.LayersToTransform!.Contains(int.Parse(m.Groups[1].Value));
        }
        return false;
    }
}
