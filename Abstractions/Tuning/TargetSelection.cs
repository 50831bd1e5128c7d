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
            bool match = targets.IsAllLinear
                ? supported && path != outputHead && !(outputHead is not null && path.EndsWith("." + outputHead, StringComparison.Ordinal))
                : targets.Matches(path);
            if (!match) continue;
            if (config.ExcludeModules is not null && config.ExcludeModules.Matches(path)) continue;
            if (config.LayersToTransform is not null && targets.Names is not null && !InLayers(path, config)) continue;
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
