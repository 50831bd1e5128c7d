namespace PeftHost.Tokenizers.Jinja.Runtime;

/// <summary>
/// One scope of variables. Jinja opens a new scope for each for-loop iteration, macro call, with block,
/// call block, filter block and block set; <c>if</c> does not. A name is looked up through the enclosing
/// scopes, then the render variables, then the environment's globals.
/// </summary>
internal sealed class Frame(RenderContext context, Frame? parent)
{
    // A name of this scope not assigned yet that must not be looked up further out (Jinja's "missing").
    private static readonly object Unassigned = new();

    private readonly Frame? _parent = parent;
    private Dictionary<string, object?>? _variables;

    public RenderContext Context { get; } = context;

    public Frame Child() => new(Context, this);

    /// <summary>A new scope whose <paramref name="undefinedAtStart"/> names are undefined until assigned (see Nodes.Symbols).</summary>
    public Frame Child(IReadOnlyList<string> undefinedAtStart)
    {
        var frame = new Frame(Context, this);
        frame.MarkUnassigned(undefinedAtStart);
        return frame;
    }

    public void MarkUnassigned(IReadOnlyList<string> names)
    {
        foreach (string name in names) Set(name, Unassigned);
    }

    public object? Lookup(string name)
    {
        for (Frame? f = this; f is not null; f = f._parent)
        {
            if (f._variables is not null && f._variables.TryGetValue(name, out object? value))
                return ReferenceEquals(value, Unassigned) ? Undefined.ForName(name) : value;
        }
        return Context.LookupGlobal(name);
    }

    public void Set(string name, object? value) => (_variables ??= new(StringComparer.Ordinal))[name] = value;
}
