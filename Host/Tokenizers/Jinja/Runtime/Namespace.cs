namespace PeftHost.Tokenizers.Jinja.Runtime;

/// <summary>
/// Jinja's namespace(): the one object a template may change, by <c>{% set ns.attr = value %}</c>; it is how
/// a value computed inside a loop survives the loop's scope.
/// </summary>
internal sealed class Namespace
{
    public OrderedDictionary<string, object?> Attributes { get; } = new(StringComparer.Ordinal);
}
