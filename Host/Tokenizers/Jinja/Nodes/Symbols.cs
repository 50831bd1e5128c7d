namespace PeftHost.Tokenizers.Jinja.Nodes;

/// <summary>
/// Jinja's compile-time scoping (jinja2/idtracking.py), reproduced so that names resolve as in Jinja: in each
/// scope (the template, a loop body, a macro, ...) a name that is assigned there is that scope's own from its
/// start. When the scope's first use of it (in its own code, before nested scopes) is an assignment made on
/// every path and no enclosing scope uses the name, it starts undefined: until assigned it hides a render
/// variable or global of the same name, also from loops and macros that read it earlier.
/// </summary>
internal sealed class Symbols
{
    private enum LoadKind
    {
        Parameter,
        Resolve,
        Alias,
        Undefined,
    }

    private readonly Symbols? _parent;
    private Dictionary<string, string> _refs = new(StringComparer.Ordinal);
    private Dictionary<string, LoadKind> _loads = new(StringComparer.Ordinal);
    private HashSet<string> _stores = new(StringComparer.Ordinal);
    private readonly int _level;

    public Symbols(Symbols? parent)
    {
        _parent = parent;
        _level = parent is null ? 0 : parent._level + 1;
    }

    /// <summary>The names this scope must start as undefined (Jinja's VAR_LOAD_UNDEFINED).</summary>
    public IReadOnlyList<string> UndefinedAtStart() =>
        [.. _refs.Where(r => _loads.TryGetValue(r.Value, out LoadKind k) && k == LoadKind.Undefined).Select(r => r.Key).Order(StringComparer.Ordinal)];

    public Symbols Copy() => new(_parent)
    {
        _refs = new(_refs, StringComparer.Ordinal),
        _loads = new(_loads, StringComparer.Ordinal),
        _stores = new(_stores, StringComparer.Ordinal),
    };

    public void Load(string name)
    {
        if (FindRef(name) is null) Define(name, LoadKind.Resolve);
    }

    public void Store(string name)
    {
        _stores.Add(name);
        if (_refs.ContainsKey(name)) return;
        Define(name, _parent?.FindRef(name) is not null ? LoadKind.Alias : LoadKind.Undefined);
    }

    public void DeclareParameter(string name)
    {
        _stores.Add(name);
        Define(name, LoadKind.Parameter);
    }

    /// <summary>After the branches of an if: a name assigned in some branches only starts from its outer value.</summary>
    public void BranchUpdate(IReadOnlyList<Symbols> branches)
    {
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (Symbols branch in branches)
        {
            foreach (string target in branch._stores)
            {
                if (_stores.Contains(target)) continue;
                counts[target] = counts.GetValueOrDefault(target) + 1;
            }
        }
        foreach (Symbols branch in branches)
        {
            foreach ((string k, string v) in branch._refs) _refs[k] = v;
            foreach ((string k, LoadKind v) in branch._loads) _loads[k] = v;
            _stores.UnionWith(branch._stores);
        }
        foreach ((string name, int count) in counts)
        {
            if (count == branches.Count) continue;
            string target = FindRef(name)!;
            _loads[target] = _parent?.FindRef(name) is not null ? LoadKind.Alias : LoadKind.Resolve;
        }
    }

    private string? FindRef(string name) => _refs.TryGetValue(name, out string? r) ? r : _parent?.FindRef(name);

    private void Define(string name, LoadKind kind)
    {
        string ident = $"l_{_level}_{name}";
        _refs[name] = ident;
        _loads[ident] = kind;
    }
}
