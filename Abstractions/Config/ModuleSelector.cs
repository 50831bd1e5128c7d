using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace PeftHost.Abstractions.Config;

/// <summary>
/// PEFT's way of naming modules in a config (<c>target_modules</c>, <c>exclude_modules</c>,
/// <c>modules_to_save</c>): a list of names, each matching a module whose dotted path equals it or
/// ends with "." + it; or one regular expression that must match the whole path; or the special
/// value <c>all-linear</c>.
/// </summary>
public sealed class ModuleSelector
{
    /// <summary>PEFT's shorthand for every linear layer but the output head.</summary>
    public const string AllLinear = "all-linear";

    private readonly Regex? _regex;

    private ModuleSelector(IReadOnlyList<string>? names, string? pattern, Regex? regex)
    {
        Names = names;
        Pattern = pattern;
        _regex = regex;
    }

    /// <summary>The names, when the selector is a list.</summary>
    public IReadOnlyList<string>? Names { get; }

    /// <summary>The regular expression or <see cref="AllLinear"/>, when the selector is a string.</summary>
    public string? Pattern { get; }

    /// <summary>Whether this is <c>all-linear</c>.</summary>
    public bool IsAllLinear => Pattern == AllLinear;

    /// <summary>A selector from a list of names.</summary>
    public static ModuleSelector FromNames(IEnumerable<string> names) => new([.. names], null, null);

    /// <summary>A selector from a string: <c>all-linear</c> or a regular expression (full match).</summary>
    /// <param name="pattern">The string.</param>
    /// <param name="field">The config field it came from, for error messages.</param>
    public static ModuleSelector FromString(string pattern, string field = "target_modules")
    {
        if (pattern == AllLinear) return new(null, pattern, null);
        try
        {
            return new(null, pattern, new Regex("^(?:" + pattern + ")$", RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1)));
        }
        catch (ArgumentException e)
        {
            throw new TunerConfigException($"adapter config field '{field}': '{pattern}' is not a valid regular expression: {e.Message}");
        }
    }

    /// <summary>Whether a module's dotted path is selected (for <c>all-linear</c>, the caller decides by type).</summary>
    public bool Matches(string modulePath)
    {
        if (_regex is not null) return _regex.IsMatch(modulePath);
        if (Names is null) return false;
        foreach (string name in Names)
            if (modulePath == name || modulePath.EndsWith("." + name, StringComparison.Ordinal)) return true;
        return false;
    }

    /// <summary>The JSON form PEFT writes: a list or a string.</summary>
    public JsonNode ToJson()
    {
        if (Pattern is not null) return JsonValue.Create(Pattern)!;
        var array = new JsonArray();
        foreach (string name in Names!) array.Add(name);
        return array;
    }

    /// <inheritdoc />
    public override string ToString() => Pattern ?? "[" + string.Join(", ", Names!) + "]";
}
