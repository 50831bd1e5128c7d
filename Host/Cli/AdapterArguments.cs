using System.Globalization;
using PeftHost.Engine.Inference;

namespace PeftHost.Cli;

/// <summary>The <c>--adapter [NAME=]DIR</c> and <c>--adapter-scale NAME=SCALE</c> arguments.</summary>
internal static class AdapterArguments
{
    /// <summary>
    /// <c>[NAME=]DIR</c>: an existing folder whose name contains '=' is taken as a folder; without NAME the
    /// adapter is named after its folder (<see cref="AdapterSpec.FromFolder"/>).
    /// </summary>
    public static AdapterSpec Parse(string text, int index)
    {
        int eq = text.IndexOf('=');
        if (eq > 0 && !Directory.Exists(text)) return new AdapterSpec(text[..eq], text[(eq + 1)..]);
        return AdapterSpec.FromFolder(text, index);
    }

    /// <summary>Every <c>--adapter</c>, with the scales of <c>--adapter-scale NAME=SCALE</c> applied (a name that is no adapter is an error).</summary>
    public static IReadOnlyList<AdapterSpec> Parse(IReadOnlyList<string>? adapters, IReadOnlyList<string>? scales = null)
    {
        List<AdapterSpec> specs = [.. (adapters ?? []).Select(Parse)];
        foreach (string s in scales ?? [])
        {
            int eq = s.IndexOf('=');
            if (eq <= 0 || !double.TryParse(s[(eq + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture, out double scale) || !double.IsFinite(scale))
                throw new ArgumentException($"--adapter-scale '{s}': expected NAME=SCALE with a number, e.g. sql=0.5.");
            string name = s[..eq];
            int i = specs.FindIndex(a => a.Name == name);
            if (i < 0) throw new ArgumentException($"--adapter-scale names '{name}', which is not an --adapter (adapters: {string.Join(", ", specs.Select(a => a.Name))}).");
            specs[i] = specs[i] with { Scale = scale };
        }
        return specs;
    }
}
