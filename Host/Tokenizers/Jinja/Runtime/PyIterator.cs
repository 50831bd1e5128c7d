namespace PeftHost.Tokenizers.Jinja.Runtime;

/// <summary>
/// A Python iterator (what select, map, selectattr, reverse and items return): lazy, single pass, always
/// true, without a length (so <c>|length</c> on it fails, as in Jinja; templates write <c>|list|length</c>).
/// </summary>
internal sealed class PyIterator(IEnumerable<object?> source, string typeName = "generator")
{
    private readonly IEnumerator<object?> _items = source.GetEnumerator();

    public string TypeName { get; } = typeName;

    /// <summary>The items not consumed yet; consuming them here consumes them for good.</summary>
    public IEnumerable<object?> Drain()
    {
        while (_items.MoveNext()) yield return _items.Current;
    }
}
