using System.Text.Json;
using PeftHost.Tokenizers;
using PeftHost.Tokenizers.Jinja;
using PeftHost.Tokenizers.Jinja.Runtime;
using PeftHost.Tokenizers.Jinja.Syntax;
using Xunit;

namespace PeftHost.Formats.Tests.Tokenizers.Jinja;

/// <summary>
/// What jinja2 did with a template (tools/chat-templates/render_references.py): the output, or the class and
/// message of the error. Our renderer must give the same output byte for byte, or fail the same way.
/// </summary>
internal sealed record ReferenceOutcome(string? Output, string? Error, string? Message, int? Line)
{
    public static ReferenceOutcome Read(JsonElement e) => new(
        e.TryGetProperty("output", out JsonElement o) ? o.GetString() : null,
        e.TryGetProperty("error", out JsonElement err) ? err.GetString() : null,
        e.TryGetProperty("message", out JsonElement m) ? m.GetString() : null,
        e.TryGetProperty("line", out JsonElement l) && l.ValueKind == JsonValueKind.Number ? l.GetInt32() : null);

    /// <summary>Python's exception class for each kind of render error.</summary>
    public static string PythonClass(TemplateErrorKind kind) => kind switch
    {
        TemplateErrorKind.Raised => "TemplateError",
        TemplateErrorKind.Undefined => "UndefinedError",
        TemplateErrorKind.Type => "TypeError",
        TemplateErrorKind.Value => "ValueError",
        TemplateErrorKind.Attribute => "AttributeError",
        TemplateErrorKind.FilterArgument => "FilterArgumentError",
        TemplateErrorKind.ZeroDivision => "ZeroDivisionError",
        TemplateErrorKind.Overflow => "OverflowError",
        TemplateErrorKind.Security => "SecurityError",
        TemplateErrorKind.Runtime => "TemplateRuntimeError",
        _ => "RecursionError",
    };

    /// <summary>Asserts that <paramref name="render"/> matches this outcome.</summary>
    public void AssertMatches(Func<string> render, string label)
    {
        if (Output is not null)
        {
            string actual;
            try
            {
                actual = render();
            }
            catch (Exception e) when (e is ChatTemplateException or JinjaRuntimeException or JinjaSyntaxException)
            {
                Assert.Fail($"{label}: jinja2 renders it, we fail: {e.Message}");
                return;
            }
            Assert.Equal(Output, actual);
            return;
        }
        Exception error = Assert.ThrowsAny<Exception>(render);
        Exception inner = error is ChatTemplateException { InnerException: { } i } ? i : error;
        // SyntaxError: Python's own, when the code Jinja generates does not compile ('break' outside a loop).
        if (Error is "TemplateSyntaxError" or "TemplateAssertionError" or "SyntaxError")
        {
            var syntax = Assert.IsType<JinjaSyntaxException>(inner, exactMatch: false);
            if (Line is int line && Error != "SyntaxError") Assert.True(line == syntax.Position.Line, $"{label}: jinja2 reports line {line}, we report {syntax.Position} ({syntax.Detail})");
            return;
        }
        var runtime = Assert.IsType<JinjaRuntimeException>(inner, exactMatch: false);
        Assert.True(Error == PythonClass(runtime.Kind), $"{label}: jinja2 raises {Error}: {Message}; we raise {runtime.Message}");
        if (runtime.Kind == TemplateErrorKind.Raised) Assert.Equal(Message, runtime.Detail);
    }
}
