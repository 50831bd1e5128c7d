using PeftHost.Tokenizers.Jinja.Runtime;

namespace PeftHost.Tokenizers.Jinja.Nodes;

/// <summary>What a set, for or with assigns to: a name, a tuple of targets (unpacking) or a namespace attribute.</summary>
internal abstract class AssignTarget
{
    public abstract void Assign(Frame frame, object? value);

    /// <summary>Records the assignment (a loop target or with binding is a parameter of its scope).</summary>
    public abstract void Analyze(Symbols symbols, bool asParameter);

    /// <summary>The target read back after <see cref="Assign"/>: what a filtered loop hands on (k, v becomes a tuple).</summary>
    public abstract object? Repack(Frame frame);
}

/// <summary><c>x</c>.</summary>
internal sealed class NameTarget(string name) : AssignTarget
{
    public string Name { get; } = name;

    public override void Assign(Frame frame, object? value) => frame.Set(Name, value);

    public override void Analyze(Symbols symbols, bool asParameter)
    {
        if (asParameter) symbols.DeclareParameter(Name);
        else symbols.Store(Name);
    }

    public override object? Repack(Frame frame) => frame.Lookup(Name);
}

/// <summary><c>k, v</c>: unpacks an iterable of exactly as many items (Python's ValueError otherwise).</summary>
internal sealed class TupleTarget(IReadOnlyList<AssignTarget> items) : AssignTarget
{
    public override void Assign(Frame frame, object? value)
    {
        if (!PyAccess.IsIterable(value) || value is Undefined) throw TemplateError.Type($"cannot unpack non-iterable {PyTypes.TypeName(value)} object");
        IReadOnlyList<object?> values = PyAccess.ToList(value);
        if (values.Count < items.Count) throw TemplateError.Value($"not enough values to unpack (expected {items.Count}, got {values.Count})");
        if (values.Count > items.Count) throw TemplateError.Value($"too many values to unpack (expected {items.Count})");
        for (int i = 0; i < items.Count; i++) items[i].Assign(frame, values[i]);
    }

    public override void Analyze(Symbols symbols, bool asParameter)
    {
        foreach (AssignTarget item in items) item.Analyze(symbols, asParameter);
    }

    public override object? Repack(Frame frame) => new PyList([.. items.Select(i => i.Repack(frame))], isTuple: true);
}

/// <summary><c>ns.attr</c>: only a namespace() object can be assigned to.</summary>
internal sealed class NamespaceTarget(string name, string attribute) : AssignTarget
{
    public override void Assign(Frame frame, object? value)
    {
        if (frame.Lookup(name) is not Namespace ns) throw new TemplateError(TemplateErrorKind.Runtime, "cannot assign attribute on non-namespace object");
        ns.Attributes[attribute] = value;
    }

    public override void Analyze(Symbols symbols, bool asParameter) => symbols.Load(name);

    public override object? Repack(Frame frame) => throw new InvalidOperationException("A namespace attribute is never a loop target.");
}
