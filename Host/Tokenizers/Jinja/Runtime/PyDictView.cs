namespace PeftHost.Tokenizers.Jinja.Runtime;

/// <summary>
/// What dict.keys(), dict.values() and dict.items() return: iterable, sized, printed as
/// <c>dict_items([('a', 1)])</c>, but not subscriptable (so <c>d.items()[0]</c> is Undefined, as in Jinja).
/// </summary>
internal sealed class PyDictView(string typeName, List<object?> items)
{
    public string TypeName { get; } = typeName;

    public List<object?> Items { get; } = items;
}
