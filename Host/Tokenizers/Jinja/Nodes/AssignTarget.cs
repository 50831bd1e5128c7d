using PeftHost.Tokenizers.Jinja.Runtime;

namespace PeftHost.Tokenizers.Jinja.Nodes;

/// <summary>What a set, for or with assigns to: a name, a tuple of targets (unpacking) or a namespace attribute.</summary>
internal abstract class AssignTarget
{
    public abstract void Assign(Frame frame, object? value);
}

/// <summary><c>x</c>.</summary>
internal sealed class NameTarget(string name) : AssignTarget
{
    public string Name { get; } = name;

    public override void Assign(Frame frame, object? value) => frame.Set(Name, value);
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
}

/// <summary><c>ns.attr</c>: only a namespace() object can be assigned to.</summary>
internal sealed class NamespaceTarget(string name, string attribute) : AssignTarget
{
    public override void Assign(Frame frame, object? value)
    {
        if (frame.Lookup(name) is not Namespace ns) throw new TemplateError(TemplateErrorKind.Runtime, "cannot assign attribute on non-namespace object");
        ns.Attributes[attribute] = value;
    }
}
