namespace PeftHost.Tokenizers.Jinja.Runtime;

/// <summary>
/// A Python dict: insertion ordered, keys compared as Python compares them (1, 1.0 and True are one key).
/// Templates cannot change it (the immutable sandbox); only builders fill it.
/// </summary>
internal sealed class PyDict
{
    private readonly OrderedDictionary<object, object?> _map = new(PyKeyComparer.Instance);

    public int Count => _map.Count;

    public void Set(object? key, object? value) => _map[PyKeyComparer.Box(key)] = value;

    /// <summary>Looks a key up; an unhashable key (a list, a dict) is Python's TypeError.</summary>
    public bool TryGet(object? key, out object? value) => _map.TryGetValue(PyKeyComparer.Box(key), out value);

    public bool ContainsKey(object? key) => _map.ContainsKey(PyKeyComparer.Box(key));

    public IEnumerable<object?> Keys
    {
        get
        {
            foreach (object k in _map.Keys) yield return PyKeyComparer.Unbox(k);
        }
    }

    public IEnumerable<object?> Values => _map.Values;

    public IEnumerable<KeyValuePair<object?, object?>> Items
    {
        get
        {
            foreach (KeyValuePair<object, object?> kv in _map) yield return new(PyKeyComparer.Unbox(kv.Key), kv.Value);
        }
    }

    /// <summary>The (key, value) tuples, as dict.items() lists them.</summary>
    public PyList ItemTuples()
    {
        var list = new List<object?>(_map.Count);
        foreach (KeyValuePair<object, object?> kv in _map) list.Add(PyList.Tuple(PyKeyComparer.Unbox(kv.Key), kv.Value));
        return new PyList(list);
    }
}
