namespace PeftHost.Tokenizers.Jinja.Runtime;

/// <summary>
/// Jinja's default Undefined: what a missing name, attribute or item evaluates to. It prints as "", is
/// false, empty and iterable; arithmetic, calls, comparisons, attribute and item access on it fail with its
/// message (as jinja2.Undefined does, not ChainableUndefined).
/// </summary>
internal sealed class Undefined
{
    private static readonly object NoOwner = new();
    private readonly string? _hint;
    private readonly object? _owner;
    private readonly object? _key;
    private readonly TemplateErrorKind _kind;

    private Undefined(string? hint, object? owner, object? key, TemplateErrorKind kind)
    {
        _hint = hint;
        _owner = owner;
        _key = key;
        _kind = kind;
    }

    /// <summary>A name that is not defined anywhere.</summary>
    public static Undefined ForName(string name) => new(null, NoOwner, name, TemplateErrorKind.Undefined);

    /// <summary>An attribute or item the object does not have.</summary>
    public static Undefined ForMember(object? owner, object? key) => new(null, owner, key, TemplateErrorKind.Undefined);

    /// <summary>An undefined value with its own explanation.</summary>
    public static Undefined WithHint(string hint) => new(hint, NoOwner, null, TemplateErrorKind.Undefined);

    /// <summary>A mutating method the immutable sandbox hides (printing it gives "", calling it fails).</summary>
    public static Undefined Unsafe(object? owner, string attribute) =>
        new($"access to attribute {PyText.Repr(attribute)} of {PyText.Repr(PyTypes.TypeName(owner))} object is unsafe.", NoOwner, null, TemplateErrorKind.Security);

    public string Message
    {
        get
        {
            if (_hint is not null) return _hint;
            if (ReferenceEquals(_owner, NoOwner)) return $"{PyText.Repr(_key)} is undefined";
            if (_key is not string) return $"{ObjectTypeRepr(_owner)} has no element {PyText.Repr(_key)}";
            return $"{PyText.Repr(ObjectTypeRepr(_owner))} has no attribute {PyText.Repr(_key)}";
        }
    }

    /// <summary>The error using this value raises.</summary>
    public TemplateError Fail() => new(_kind, Message);

    // jinja2.utils.object_type_repr: builtins by bare name, Jinja's own classes with their module.
    private static string ObjectTypeRepr(object? owner) => owner switch
    {
        null => "None",
        Namespace => "jinja2.utils.Namespace object",
        LoopInfo => "jinja2.runtime.LoopContext object",
        Undefined => "jinja2.runtime.Undefined object",
        _ => PyTypes.TypeName(owner) + " object",
    };
}
