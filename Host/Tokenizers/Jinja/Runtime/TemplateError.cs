namespace PeftHost.Tokenizers.Jinja.Runtime;

/// <summary>The Python exception class a render failure corresponds to (its name prefixes the message).</summary>
internal enum TemplateErrorKind
{
    /// <summary>Jinja's UndefinedError: an undefined value was used in arithmetic, a call, a comparison or an attribute access.</summary>
    Undefined,

    /// <summary>Python's TypeError: an operation on values of the wrong type.</summary>
    Type,

    /// <summary>Python's ValueError: a value of the right type but not acceptable.</summary>
    Value,

    /// <summary>Python's AttributeError: a method the value does not have (|dictsort of a list).</summary>
    Attribute,

    /// <summary>Jinja's FilterArgumentError: a filter's arguments do not fit (map without a filter name).</summary>
    FilterArgument,

    /// <summary>Python's ZeroDivisionError.</summary>
    ZeroDivision,

    /// <summary>Python's OverflowError: an integer beyond 64 bits, a range or string too large.</summary>
    Overflow,

    /// <summary>Jinja's SecurityError: the immutable sandbox refuses a mutating method (list.append, dict.update, ...).</summary>
    Security,

    /// <summary>Jinja's TemplateRuntimeError: a template-level misuse such as assigning an attribute of a non-namespace.</summary>
    Runtime,

    /// <summary>Python's RecursionError: macros calling themselves too deeply.</summary>
    Recursion,

    /// <summary>The template itself raised it (transformers' raise_exception); the message is the template's.</summary>
    Raised,
}

/// <summary>
/// A failure while evaluating, raised where the template position is not known (inside a filter or an
/// operator); the renderer turns it into a <see cref="JinjaRuntimeException"/> at the node being evaluated.
/// </summary>
internal sealed class TemplateError(TemplateErrorKind kind, string message) : Exception(message)
{
    public TemplateErrorKind Kind { get; } = kind;

    public static TemplateError Type(string message) => new(TemplateErrorKind.Type, message);

    public static TemplateError Value(string message) => new(TemplateErrorKind.Value, message);

    public static TemplateError Attribute(string message) => new(TemplateErrorKind.Attribute, message);

    public static TemplateError FilterArgument(string message) => new(TemplateErrorKind.FilterArgument, message);

    public static TemplateError Overflow(string message) => new(TemplateErrorKind.Overflow, message);

    public static TemplateError IntegerOverflow() => Overflow("integer result beyond 64 bits (Python's unbounded integers are not supported)");
}
