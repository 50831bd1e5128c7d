using PeftHost.Tokenizers.Jinja.Runtime;
using PeftHost.Tokenizers.Jinja.Syntax;

namespace PeftHost.Tokenizers.Jinja;

/// <summary>Rendering failed at a position of the template: a Python-style error, or the template's own raise_exception.</summary>
internal sealed class JinjaRuntimeException(TemplateErrorKind kind, string detail, SourcePosition position, Exception inner)
    : Exception($"{position}: {Prefix(kind)}{detail}", inner)
{
    public TemplateErrorKind Kind { get; } = kind;

    /// <summary>The error without position or kind: for <see cref="TemplateErrorKind.Raised"/>, the template's message.</summary>
    public string Detail { get; } = detail;

    public SourcePosition Position { get; } = position;

    private static string Prefix(TemplateErrorKind kind) => kind switch
    {
        TemplateErrorKind.Raised => "",
        TemplateErrorKind.Undefined => "UndefinedError: ",
        TemplateErrorKind.Type => "TypeError: ",
        TemplateErrorKind.Value => "ValueError: ",
        TemplateErrorKind.Attribute => "AttributeError: ",
        TemplateErrorKind.FilterArgument => "FilterArgumentError: ",
        TemplateErrorKind.ZeroDivision => "ZeroDivisionError: ",
        TemplateErrorKind.Overflow => "OverflowError: ",
        TemplateErrorKind.Security => "SecurityError: ",
        TemplateErrorKind.Runtime => "TemplateRuntimeError: ",
        _ => "RecursionError: ",
    };
}
